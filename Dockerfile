# The app image: our WSGI server + the WSGI app + the metrics exporter,
# run by supervisord under tini. Debian bookworm's Python 3.11.
FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini \
 && rm -rf /var/lib/apt/lists/*

FROM base AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/ /tmp/requirements/
# requirements/wheels/ holds wheels downloaded on the host (scripts/wheels.sh)
# when pip inside a build can't reach PyPI; empty, pip installs from PyPI.
RUN python3 -m venv /opt/venv \
 && if ls /tmp/requirements/wheels/*.whl >/dev/null 2>&1; then \
        index="--no-index --find-links /tmp/requirements/wheels"; fi \
 && /opt/venv/bin/pip install --no-cache-dir $index \
        -r /tmp/requirements/app.txt -c /tmp/requirements/constraints.txt

FROM base
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/run/metrics \
    APP_MODULE=app.wsgi:application
RUN useradd --system --uid 10001 --user-group --home-dir /srv --shell /usr/sbin/nologin app \
 && install -d -o app -g app /run/metrics
COPY --from=build /opt/venv /opt/venv
COPY deploy/app/ /etc/supervisor/
COPY server/ /srv/server/
COPY app/ /srv/app/
WORKDIR /srv
USER app
EXPOSE 8000 9100
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["supervisord", "-c", "/etc/supervisor/supervisord.conf"]
