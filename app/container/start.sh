#!/bin/sh
# Start the WSGI server that WSGI_SERVER names: `wsgistack` (ours, the default)
# or `gunicorn` (the reference engine, for side-by-side comparison). Both read
# the same environment (WEB_CONCURRENCY, APP_MODULE, WSGISTACK_*); an empty
# WEB_CONCURRENCY is the container's own (workers.py: 2 x CPUs + 1, capped by
# the memory limit). Arguments go to the server: `start.sh --check-config`
# validates the settings and imports the app (scripts/preflight.py). exec, so
# the server is supervisord's child and receives its signals.
set -eu
if [ -z "${WEB_CONCURRENCY:-}" ]; then
    WEB_CONCURRENCY=$(python /etc/supervisor/workers.py)
    export WEB_CONCURRENCY
fi
case "${WSGI_SERVER:-wsgistack}" in
    wsgistack) exec wsgistack --bind 0.0.0.0:8000 --access-logfile - "$@" ;;
    gunicorn) exec gunicorn --config /etc/supervisor/gunicorn.conf.py "$@" "${APP_MODULE}" ;;
    *) echo "start: WSGI_SERVER must be wsgistack or gunicorn, got '${WSGI_SERVER}'" >&2; exit 2 ;;
esac
