#!/bin/sh
# Render /etc/nginx/templates/*.template into /tmp/nginx/conf.d/ with the
# variables below (only these: nginx's own $variables stay untouched), check
# the configuration, then exec nginx so it receives the container's signals.
set -eu
: "${HTTPS_PORT:=8443}" "${LIMIT_REQUEST_BODY:=16777216}"
export HTTPS_PORT LIMIT_REQUEST_BODY
mkdir -p /tmp/nginx/conf.d
for template in /etc/nginx/templates/*.template; do
    name=$(basename "$template" .template)
    envsubst '${HTTPS_PORT} ${LIMIT_REQUEST_BODY}' <"$template" >"/tmp/nginx/conf.d/$name"
done
if [ ! -r /etc/nginx/certs/fullchain.pem ] || [ ! -r /etc/nginx/certs/privkey.pem ]; then
    echo "entrypoint: no fullchain.pem/privkey.pem in /etc/nginx/certs (run scripts/gen-cert.sh or set TLS_CERT_DIR)" >&2
    exit 1
fi
nginx -t -q
exec "$@"
