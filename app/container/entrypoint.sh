#!/bin/sh
# The app container's entrypoint (under tini). Before the server starts
# (supervisord, the default command), runs PRESTART once per container if set,
# e.g. PRESTART="python manage.py check --deploy": it must be idempotent (every
# replica and every restart runs it) and it is no place for migrations (run
# those once per deploy: make manage CMD=migrate). A failing PRESTART ends the
# container with its status and output. Any other command (make run, make
# manage) runs as it is.
set -eu
if [ "${1:-}" = supervisord ] && [ -n "${PRESTART:-}" ]; then
    echo "entrypoint: PRESTART: $PRESTART" >&2
    status=0
    sh -c "$PRESTART" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "entrypoint: PRESTART failed with status $status; not starting the server" >&2
        exit "$status"
    fi
fi
exec "$@"
