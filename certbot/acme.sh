#!/bin/sh
# The certificate for DOMAIN from the ACME server at ACME_DIRECTORY (Let's
# Encrypt's by default), by certbot's HTTP-01 webroot challenge: certbot
# writes the token under /srv/acme/webroot, which nginx serves on port 80 at
# /.well-known/acme-challenge/ (the `acme` volume, shared with the proxy).
# A certificate certbot obtained or renewed is installed as /srv/acme/current/
# (fullchain.pem and privkey.pem, swapped in at once by renaming a link);
# nginx's watcher (nginx/certs.sh) sees it and reloads nginx gracefully.
#
#   acme.sh run                    obtain, then try a renewal every 12 hours
#                                  (certbot renews within 30 days of expiry);
#                                  after a failure, try again in an hour
#   acme.sh once [CERTBOT FLAGS]   one try (e.g. --force-renewal); its status
#   acme.sh check                  check the settings and exit 0
#
# A failure (no ACME server, a failed challenge) leaves the installed
# certificate as it is, so nginx keeps serving it, and logs one line
# ("acme: no certificate ..."); certbot's own log is /tmp/certbot/log/.
# A bad setting exits 2 with one line naming it. DOMAIN's form is checked by
# the proxy's entrypoint, which answers it.
set -eu
: "${DOMAIN:=}" "${ACME_EMAIL:=}"
: "${ACME_DIRECTORY:=https://acme-v02.api.letsencrypt.org/directory}"
state=/var/lib/acme # certbot's account, certificates and renewal settings (a volume)
shared=/srv/acme    # the webroot and the installed certificate (shared with nginx)
renew_interval=43200
retry_interval=3600

fail() {
    echo "acme: $*" >&2
    exit 2
}
[ -n "$DOMAIN" ] || fail "DOMAIN must be set: the host name to get a certificate for"
case $ACME_EMAIL in
    *[[:space:],]*) fail "ACME_EMAIL must be one e-mail address, got '$ACME_EMAIL'" ;;
    '' | ?*@?*.?*) ;;
    *) fail "ACME_EMAIL must be an e-mail address (or empty), got '$ACME_EMAIL'" ;;
esac
case $ACME_DIRECTORY in
    https://?*) ;;
    *) fail "ACME_DIRECTORY must be an https:// URL, got '$ACME_DIRECTORY'" ;;
esac

# Install the lineage's certificate as $shared/current unless it is there.
install_certificate() {
    live=$state/live/$DOMAIN
    if cmp -s "$live/fullchain.pem" "$shared/current/fullchain.pem" \
        && cmp -s "$live/privkey.pem" "$shared/current/privkey.pem"; then
        return 0
    fi
    new=$(mktemp -d "$shared/cert.XXXXXX") \
        && (umask 027 && cat "$live/fullchain.pem" >"$new/fullchain.pem" \
            && cat "$live/privkey.pem" >"$new/privkey.pem") \
        && chmod 0750 "$new" \
        && ln -sfn "${new##*/}" "$shared/current.new" \
        && mv -T "$shared/current.new" "$shared/current" \
        || return 1
    for old in "$shared"/cert.*; do
        [ "$old" = "$new" ] || rm -rf "$old"
    done
    echo "acme: installed a new certificate for $DOMAIN" >&2
}

# Why certbot failed, in one line, from its output: the CA's word on the
# challenge, else the error (an unreachable server), else its first line.
reason() {
    detail=$(printf '%s\n' "$1" | sed -n 's/^ *Detail: *//p' | head -n 1)
    if [ -n "$detail" ]; then
        echo "the HTTP-01 challenge failed: $detail"
    elif printf '%s\n' "$1" | grep -q 'ConnectionError'; then
        errno=$(printf '%s\n' "$1" | grep -o '\[Errno [^]]*\] [^'\''"]*' | head -n 1)
        echo "cannot reach the ACME server${errno:+ ($errno)}"
    else
        printf '%s\n' "$1" | grep -v '^Saving debug log' | grep -m 1 .
    fi
}

# One certbot run: install what it got, or log one line why not; its status.
once() {
    mkdir -p /tmp/certbot
    if [ -n "$ACME_EMAIL" ]; then
        set -- --email "$ACME_EMAIL" "$@"
    else
        set -- --register-unsafely-without-email "$@"
    fi
    if output=$(certbot certonly --non-interactive --agree-tos --keep-until-expiring \
        --server "$ACME_DIRECTORY" --webroot --webroot-path "$shared/webroot" \
        --domain "$DOMAIN" --cert-name "$DOMAIN" \
        --config-dir "$state" --work-dir /tmp/certbot --logs-dir /tmp/certbot/log "$@" 2>&1); then
        install_certificate && return 0
        echo "acme: could not install the certificate for $DOMAIN in $shared;" \
            "the current one stays" >&2
        return 1
    fi
    echo "acme: no certificate for $DOMAIN from $ACME_DIRECTORY: $(reason "$output");" \
        "the current one stays" >&2
    return 1
}

case ${1:-run} in
    check) exit 0 ;;
    once)
        shift
        once "$@"
        ;;
    run)
        while :; do
            if once; then
                sleep "$renew_interval"
            else
                sleep "$retry_interval"
            fi
        done
        ;;
    *) fail "usage: acme.sh run|once [CERTBOT FLAGS]|check" ;;
esac
