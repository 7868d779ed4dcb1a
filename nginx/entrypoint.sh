#!/bin/sh
# Render /etc/nginx/templates/*.template into /tmp/nginx/conf.d/ with the
# variables below (only these: nginx's own $variables stay untouched), write
# the app upstream (upstreams.sh), link the certificate (certs.sh), check the
# configuration, start the upstream and certificate watchers, then exec nginx
# so it receives the container's signals.
# A bad setting exits 2 with one line naming it. `entrypoint.sh check` checks
# the settings and exits 0 (scripts/preflight.py runs it before `make up`).
set -eu
: "${HTTPS_PORT:=8443}" "${LIMIT_REQUEST_BODY:=16777216}" "${LIMIT_REQUEST_LINE:=4094}"
: "${LIMIT_REQUEST_FIELD_SIZE:=8190}" "${RATE_LIMIT:=200r/s}" "${RATE_LIMIT_BURST:=400}"
: "${CONN_LIMIT:=128}" "${STATIC_URL:=/static/}" "${STATIC_MAX_AGE:=3600}" "${COMPRESSION:=on}"
: "${SERVER_NAME:=localhost}" "${DOMAIN:=}"

fail() {
    echo "entrypoint: $*" >&2
    exit 2
}
for name in HTTPS_PORT LIMIT_REQUEST_BODY LIMIT_REQUEST_LINE LIMIT_REQUEST_FIELD_SIZE \
    RATE_LIMIT_BURST CONN_LIMIT STATIC_MAX_AGE; do
    eval "value=\$$name"
    case $value in
        '' | *[!0-9]*) fail "$name must be a whole number, got '$value'" ;;
    esac
done
[ "$LIMIT_REQUEST_LINE" -gt 0 ] || fail "LIMIT_REQUEST_LINE must be > 0 (nginx has no 'unlimited')"
[ "$LIMIT_REQUEST_FIELD_SIZE" -gt 0 ] || fail "LIMIT_REQUEST_FIELD_SIZE must be > 0"
[ "$CONN_LIMIT" -gt 0 ] || fail "CONN_LIMIT must be > 0"
case $STATIC_URL in
    /*/) ;;
    *) fail "STATIC_URL must start and end with /, like /static/, got '$STATIC_URL'" ;;
esac
case $COMPRESSION in
    on | off) ;;
    *) fail "COMPRESSION must be on or off, got '$COMPRESSION'" ;;
esac
case $RATE_LIMIT in
    [0-9]*r/s | [0-9]*r/m) ;;
    *) fail "RATE_LIMIT must look like 200r/s or 600r/m, got '$RATE_LIMIT'" ;;
esac
# DOMAIN: the host name of the ACME certificate (certbot/acme.sh), with a
# dot and a letter (not an address); nginx answers it as one of SERVER_NAME's.
case $DOMAIN in
    *[!a-z0-9.-]* | [.-]* | *[.-] | *..* | *.-* | *-.*) ;;
    '' | *[a-z]*.* | *.*[a-z]*) DOMAIN_OK=1 ;;
esac
[ -n "${DOMAIN_OK:-}" ] || fail "DOMAIN must be one host name like example.org, got '$DOMAIN'"
# SERVER_NAME: the host names (or IPv4 addresses) clients use, space-separated.
# nginx answers them and the internal names: localhost and the loopback
# addresses (this container's healthcheck, probes from inside it), and `proxy`
# (the service's name on the stack's networks: the load generator). Any other
# Host or TLS server name is refused (templates/default-server.conf).
set -f
SERVER_NAMES=
for name in $(echo "$SERVER_NAME" | tr 'A-Z' 'a-z') $DOMAIN localhost 127.0.0.1 [::1] proxy; do
    case $name in
        '[::1]') ;;
        *[!a-z0-9.-]* | [.-]* | *[.-] | *..*)
            fail "SERVER_NAME must be host names separated by spaces, got '$name'" ;;
    esac
    case " $SERVER_NAMES " in
        *" $name "*) ;;
        *) SERVER_NAMES="${SERVER_NAMES:+$SERVER_NAMES }$name" ;;
    esac
done
set +f
# One header line in one large buffer: the field (name and value, the server's
# LIMIT_REQUEST_FIELD_SIZE) plus ": " and CRLF. The request line must fit too.
buffer=$((LIMIT_REQUEST_FIELD_SIZE + 4))
line=$((LIMIT_REQUEST_LINE + 64))
[ "$line" -le "$buffer" ] || buffer=$line
LARGE_CLIENT_HEADER_BUFFER_SIZE=$buffer
export HTTPS_PORT LIMIT_REQUEST_BODY LIMIT_REQUEST_LINE LARGE_CLIENT_HEADER_BUFFER_SIZE \
    RATE_LIMIT RATE_LIMIT_BURST CONN_LIMIT STATIC_URL STATIC_MAX_AGE COMPRESSION \
    SERVER_NAMES
[ "${1:-}" != check ] || exit 0

mkdir -p /tmp/nginx/conf.d
for template in /etc/nginx/templates/*.template; do
    name=$(basename "$template" .template)
    envsubst '${HTTPS_PORT} ${LIMIT_REQUEST_BODY} ${LIMIT_REQUEST_LINE}
        ${LARGE_CLIENT_HEADER_BUFFER_SIZE} ${RATE_LIMIT} ${RATE_LIMIT_BURST} ${CONN_LIMIT}
        ${STATIC_URL} ${STATIC_MAX_AGE} ${COMPRESSION} ${SERVER_NAMES}' \
        <"$template" >"/tmp/nginx/conf.d/$name"
done
if [ ! -r /etc/nginx/certs/fullchain.pem ] || [ ! -r /etc/nginx/certs/privkey.pem ]; then
    echo "entrypoint: fullchain.pem and privkey.pem in /etc/nginx/certs must exist and be" \
        "readable by uid $(id -u) (run scripts/gen-cert.sh or set TLS_CERT_DIR)" >&2
    exit 1
fi
# The error log of refused TLS handshakes (templates/default-server.conf),
# which mtail counts and empties: writable by mtail's user too, whichever
# container created it.
tls_log=/run/nginx-log/tls.log
[ -e "$tls_log" ] || (umask 000 && : >"$tls_log")
[ ! -O "$tls_log" ] || chmod 0666 "$tls_log"
/usr/local/bin/upstreams.sh render
/usr/local/bin/certs.sh render
nginx -t -q -e stderr
/usr/local/bin/upstreams.sh watch &
/usr/local/bin/certs.sh watch &
exec "$@"
