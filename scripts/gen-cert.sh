#!/usr/bin/env bash
# The development certificate, in nginx/certs/ (or $1): a local CA (ca.pem,
# its key ca-key.pem beside it, made once and kept) and a leaf it signs
# (fullchain.pem, privkey.pem) for localhost, 127.0.0.1, ::1 and every name
# of SERVER_NAME (space-separated; IPv4 literals become IP addresses). The
# leaf is what a public CA issues: CA:FALSE, serverAuth, ECDSA P-256, 365 days
# (Mozilla: at most 366). It is issued again when fewer than 30 days remain,
# when SERVER_NAME's names changed, or when ca.pem did not sign it. Clients
# trust the CA: `curl --cacert nginx/certs/ca.pem https://localhost:8443/`.
#
# A certificate in the folder that its local CA did not issue (your own:
# TLS_CERT_DIR in .env is the usual place) is left as it is; so is the folder
# while nothing is due. The leaf's key is mode 0644: nginx runs unprivileged
# (uid 33) in the proxy container and reads it through the read-only bind
# mount; it is a development key. The CA key stays 0600, readable by you only.
set -euo pipefail
dir=${1:-"$(dirname "$0")/../nginx/certs"}
mkdir -p "$dir"
ca=$dir/ca.pem ca_key=$dir/ca-key.pem leaf=$dir/fullchain.pem key=$dir/privkey.pem
renew_seconds=$((30 * 86400))

names=(localhost 127.0.0.1 ::1)
for name in ${SERVER_NAME:-}; do
    [[ " ${names[*]} " == *" $name "* ]] || names+=("$name")
done
sans=()
for name in "${names[@]}"; do
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then sans+=("IP:$name"); else sans+=("DNS:$name"); fi
done

if [ -s "$leaf" ] && [ ! -s "$ca_key" ]; then
    # Before the local CA, this script wrote a self-signed leaf for localhost
    # (CA:TRUE, 825 days), which verifiers refuse: replace that one only.
    if ! openssl x509 -in "$leaf" -noout -subject -issuer 2>/dev/null \
        | grep -qx 'subject=CN = localhost\|issuer=CN = localhost'; then
        echo "gen-cert: $dir holds a certificate its local CA did not issue: left as it is" >&2
        exit 0
    fi
fi

if [ ! -s "$ca" ] || [ ! -s "$ca_key" ]; then
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj "/CN=wsgistack local CA" \
            -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$ca_key" -out "$ca" 2>/dev/null
    )
    chmod 0644 "$ca"
    echo "gen-cert: wrote a local CA to $ca (trust it to verify the stack's certificate)" >&2
fi

# Why the leaf is (re)issued, or nothing when it is fine as it is.
due() {
    [ -s "$leaf" ] && [ -s "$key" ] || { echo "none yet"; return; }
    openssl verify -CAfile "$ca" "$leaf" >/dev/null 2>&1 || { echo "not signed by $ca"; return; }
    openssl x509 -in "$leaf" -noout -checkend "$renew_seconds" >/dev/null \
        || { echo "fewer than 30 days left"; return; }
    local have
    have=$(openssl x509 -in "$leaf" -noout -ext subjectAltName | tail -n +2 | tr ',' '\n' | grep -c .)
    [ "$have" -eq "${#names[@]}" ] || { echo "SERVER_NAME changed"; return; }
    for name in "${names[@]}"; do
        if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
            check=(-checkip "$name")
        else
            check=(-checkhost "$name")
        fi
        openssl x509 -in "$leaf" -noout "${check[@]}" | grep -q ' does match' \
            || { echo "SERVER_NAME changed"; return; }
    done
}
reason=$(due)
# The subject names the first name clients use (SERVER_NAME's, else localhost).
read -r cn _ <<<"${SERVER_NAME:-} localhost"
[ -n "$reason" ] || exit 0

work=$(mktemp -d "$dir/.gen-cert.XXXXXX")
trap 'rm -rf "$work"' EXIT
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=$cn" -keyout "$work/privkey.pem" -out "$work/leaf.csr" 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$(IFS=,; echo "${sans[*]}")" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$work/leaf.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$ca" -CAkey "$ca_key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
    -extfile "$work/leaf.ext" -out "$work/fullchain.pem" 2>/dev/null
chmod 0644 "$work/fullchain.pem" "$work/privkey.pem"
mv -f "$work/privkey.pem" "$key"
mv -f "$work/fullchain.pem" "$leaf"
echo "gen-cert: issued $leaf for ${names[*]} ($reason), valid 365 days" >&2
