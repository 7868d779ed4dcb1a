#!/bin/sh
# The certificate nginx serves, and a graceful reload when it changes (as
# upstreams.sh does for the app's replicas: from inside this container, no
# Docker socket). nginx reads /tmp/nginx/tls/fullchain.pem and privkey.pem
# (https.conf); /tmp/nginx/tls links to
#   - /srv/acme/current, the certificate for DOMAIN that certbot/acme.sh
#     installed in the `acme` volume, when DOMAIN is set and there is one;
#   - else /etc/nginx/certs (TLS_CERT_DIR: the development certificate or
#     your own), also while the first ACME certificate is on its way.
# Every CERT_CHECK_INTERVAL seconds the watcher compares the files' content
# with what nginx loaded; on a change (a certificate installed or renewed, or
# new files in TLS_CERT_DIR) it relinks, checks the configuration and reloads
# nginx (old workers finish their requests); a check that fails (a key that
# does not match its certificate) is logged and nginx keeps the loaded one.
#
#   certs.sh render   link the certificate to serve (before nginx starts)
#   certs.sh watch    re-check forever
set -u
interval=${CERT_CHECK_INTERVAL:-2}
link=/tmp/nginx/tls
loaded=/tmp/nginx/tls.loaded # the content (checksums) nginx loaded

log() {
    echo "certs: $*" >&2
}

# The folder to serve from.
source_dir() {
    if [ -n "${DOMAIN:-}" ] && [ -r /srv/acme/current/fullchain.pem ]; then
        echo /srv/acme/current
    else
        echo /etc/nginx/certs
    fi
}

# The folder and its files' checksums, one line.
fingerprint() {
    echo "$1 $(cat "$1/fullchain.pem" "$1/privkey.pem" 2>/dev/null | cksum)"
}

relink() {
    ln -sfn "$1" "$link"
}

case ${1:-} in
    render)
        dir=$(source_dir)
        relink "$dir"
        fingerprint "$dir" >"$loaded"
        log "serving the certificate in $dir"
        ;;
    watch)
        while :; do
            sleep "$interval"
            dir=$(source_dir)
            now=$(fingerprint "$dir")
            [ "$now" != "$(cat "$loaded")" ] || continue
            relink "$dir"
            if nginx -t -q -e stderr && nginx -e stderr -s reload; then
                log "serving the certificate in $dir (nginx reloaded)"
            else
                log "the certificate in $dir does not load: nginx keeps the one it has"
            fi
            echo "$now" >"$loaded"
        done
        ;;
    *)
        echo "usage: certs.sh render|watch" >&2
        exit 2
        ;;
esac
