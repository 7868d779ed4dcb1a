#!/usr/bin/env bash
# Write a self-signed TLS certificate for localhost to nginx/certs/ (or $1)
# unless one is there. It is its own CA: clients verify it with
# `curl --cacert nginx/certs/fullchain.pem`. Real certificates: put
# fullchain.pem and privkey.pem in a folder and set TLS_CERT_DIR in .env.
#
# The key is an ECDSA P-256 key, mode 0644: nginx runs unprivileged (uid 33)
# in the proxy container and reads it through the read-only bind mount. It is
# a development key for localhost; keep a real key readable by uid 33 only
# (e.g. `chown 33 privkey.pem && chmod 0400 privkey.pem`).
set -euo pipefail
dir=${1:-"$(dirname "$0")/../nginx/certs"}
mkdir -p "$dir"
if [ -s "$dir/fullchain.pem" ] && [ -s "$dir/privkey.pem" ]; then
    echo "gen-cert: $dir already has a certificate" >&2
    # One written before the proxy ran unprivileged is 0600: let nginx read it.
    if openssl x509 -in "$dir/fullchain.pem" -noout -subject -issuer 2>/dev/null \
        | grep -qx 'subject=CN = localhost\|issuer=CN = localhost' \
        && [ "$(stat -c %a "$dir/privkey.pem")" = 600 ]; then
        chmod 0644 "$dir/privkey.pem"
        echo "gen-cert: made the development key readable by the proxy's user" >&2
    fi
    exit 0
fi
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
chmod 0644 "$dir/fullchain.pem" "$dir/privkey.pem"
echo "gen-cert: wrote a self-signed certificate for localhost to $dir" >&2
