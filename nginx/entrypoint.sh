#!/bin/sh
# Render /etc/nginx/templates/*.template into /tmp/nginx/conf.d/ with the
# variables below (only these: nginx's own $variables stay untouched), check
# the configuration, then exec nginx so it receives the container's signals.
set -eu
: "${HTTPS_PORT:=8443}" "${LIMIT_REQUEST_BODY:=16777216}" "${APP_UPSTREAM:=app:8000}"
# The DNS server nginx asks for APP_UPSTREAM's addresses: the container's own
# (Docker's 127.0.0.11, or the cluster DNS on Kubernetes) unless NGINX_RESOLVER is set.
if [ -z "${NGINX_RESOLVER:-}" ]; then
    NGINX_RESOLVER=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
    case "$NGINX_RESOLVER" in *:*) NGINX_RESOLVER="[$NGINX_RESOLVER]" ;; esac
fi
[ -n "$NGINX_RESOLVER" ] || { echo "entrypoint: NGINX_RESOLVER unset and no nameserver in /etc/resolv.conf" >&2; exit 1; }
export HTTPS_PORT LIMIT_REQUEST_BODY APP_UPSTREAM NGINX_RESOLVER
mkdir -p /tmp/nginx/conf.d
for template in /etc/nginx/templates/*.template; do
    name=$(basename "$template" .template)
    envsubst '${HTTPS_PORT} ${LIMIT_REQUEST_BODY} ${APP_UPSTREAM} ${NGINX_RESOLVER}' \
        <"$template" >"/tmp/nginx/conf.d/$name"
done
if [ ! -r /etc/nginx/certs/fullchain.pem ] || [ ! -r /etc/nginx/certs/privkey.pem ]; then
    echo "entrypoint: no fullchain.pem/privkey.pem in /etc/nginx/certs (run scripts/gen-cert.sh or set TLS_CERT_DIR)" >&2
    exit 1
fi
nginx -t -q
exec "$@"
