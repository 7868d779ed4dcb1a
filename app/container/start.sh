#!/bin/sh
# Start the WSGI server that WSGI_SERVER names: `wsgistack` (ours, the default)
# or `gunicorn` (the reference engine, for side-by-side comparison). Both read
# the same environment (WEB_CONCURRENCY, APP_MODULE, WSGISTACK_*). exec, so the
# server is supervisord's child and receives its signals.
set -eu
case "${WSGI_SERVER:-wsgistack}" in
    wsgistack) exec wsgistack --bind 0.0.0.0:8000 --access-logfile - ;;
    gunicorn) exec gunicorn --config /etc/supervisor/gunicorn.conf.py "${APP_MODULE}" ;;
    *) echo "start: WSGI_SERVER must be wsgistack or gunicorn, got '${WSGI_SERVER}'" >&2; exit 2 ;;
esac
