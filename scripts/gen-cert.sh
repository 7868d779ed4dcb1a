#!/usr/bin/env bash
# Write a self-signed TLS certificate for localhost to nginx/certs/ (or $1)
# unless one is there. It is its own CA: clients verify it with
# `curl --cacert nginx/certs/fullchain.pem`. Real certificates: put
# fullchain.pem and privkey.pem in a folder and set TLS_CERT_DIR in .env.
#
# The key is an ECDSA P-256 key, mode 0600, owned by whoever runs this: nginx's
# master process (root in the proxy container) reads it before its workers
# drop to www-data.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../nginx/certs"}
mkdir -p "$dir"
if [ -s "$dir/fullchain.pem" ] && [ -s "$dir/privkey.pem" ]; then
    echo "gen-cert: $dir already has a certificate" >&2
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
chmod 0644 "$dir/fullchain.pem"
echo "gen-cert: wrote a self-signed certificate for localhost to $dir" >&2
