#!/bin/sh
# Render the configuration from the environment (render-config.sh: a bad
# setting stops here with one line naming it), then exec Alertmanager with it.
set -eu
/usr/local/bin/render-config.sh >/tmp/alertmanager.yml
exec "$@"
