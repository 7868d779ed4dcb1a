# Test only: pebble, Let's Encrypt's ACME test server (Debian's package), for
# tests/stack/integration/test_acme.py (compose.yaml here; build context: this
# folder). Debian's package ships no TLS certificate for pebble's own
# listeners (upstream's test/certs minica is left out): the test mounts one at
# /certs (scripts/gen-cert.sh's, for the name `pebble`). Its HTTP-01
# validations go to port 8080, nginx's plain HTTP port in its container.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends pebble curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY pebble-config.json /etc/pebble/config.json
USER 65534:65534
EXPOSE 14000 15000
HEALTHCHECK --interval=1s --timeout=3s --retries=10 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "--cacert", "/certs/ca.pem", "https://pebble:14000/dir"]
CMD ["pebble", "-config", "/etc/pebble/config.json"]
