# The app image: the wsgistack server (installed from its wheel, built from
# server/ here) + the WSGI app + the metrics exporter, run by supervisord under
# tini as the unprivileged user `app` (uid 10001). /srv holds only the app.
# Debian bookworm's Python 3.11.
# Packages come from the Debian release the base image is; exact versions are
# not pinned because Debian's security updates replace them in the archive
# (hence DL3008 ignored). The base and build stages are never run: the
# HEALTHCHECK belongs to the final stage (hence DL3057 ignored on them).
# hadolint ignore=DL3057
FROM debian:bookworm-slim AS base
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini \
 && rm -rf /var/lib/apt/lists/*

# hadolint ignore=DL3057
FROM base AS build
# build-essential and python3-dev: the server's wheel compiles its hot path
# (Cython → C, server/setup.py) here; the runtime stage gets no compiler.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv python3-dev build-essential \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/ /tmp/requirements/
COPY server/ /tmp/server/
# requirements/wheels/ holds wheels downloaded on the host (scripts/wheels.sh)
# when pip inside a build can't reach PyPI; empty, pip installs from PyPI.
# The server's wheel is built (its build backend and Cython from the same place;
# a platform wheel with the compiled hot path), then installed like any wheel;
# `pip check` fails the build on a conflict, and the hot path must be compiled.
RUN python3 -m venv /opt/venv \
 && if ls /tmp/requirements/wheels/*.whl >/dev/null 2>&1; then \
        set -- --no-index --find-links /tmp/requirements/wheels; fi \
 && /opt/venv/bin/pip install --no-cache-dir "$@" \
        -r /tmp/requirements/app.txt -c /tmp/requirements/constraints.txt \
 && /opt/venv/bin/pip wheel --no-cache-dir --no-deps "$@" --wheel-dir /tmp/dist /tmp/server \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps /tmp/dist/wsgistack-*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -c 'import sys, wsgistack._hotpath as h; sys.exit(h.mode() != "compiled")'

# The runtime: the server, supervisord and the container's scripts, no app.
# `make up` with APP_DIR builds a user's project FROM it (app/project.Dockerfile).
FROM base AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/run/metrics \
    WSGISTACK_HEALTH_PATH=/-/ready \
    HEALTHCHECK_PATH=/-/ready
# /run/metrics is a tmpfs in every deployment. Docker gives a tmpfs mounted
# without options (all Swarm can ask for) this folder's mode, owned by root:
# 1777 keeps it writable for the app user there too. /data is the app's own
# writable folder (a volume in compose: SQLite files, uploads).
RUN useradd --system --uid 10001 --user-group --home-dir /srv --shell /usr/sbin/nologin app \
 && install -d -o app -g app -m 1777 /run/metrics \
 && install -d -o app -g app -m 0755 /data
COPY --from=build /opt/venv /opt/venv
COPY app/container/ /etc/supervisor/
WORKDIR /srv
USER 10001:10001
EXPOSE 8000 9100
# Ready (HEALTHCHECK_PATH: the server's own health path, or the app's readiness
# route when named) and the metrics exporter up.
HEALTHCHECK --interval=3s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/etc/supervisor/healthcheck.py"]
ENTRYPOINT ["/usr/bin/tini", "--", "/etc/supervisor/entrypoint.sh"]
CMD ["supervisord", "-c", "/etc/supervisor/supervisord.conf"]

# The wheelhouse (requirements/wheels/, filled on the host by scripts/wheels.sh
# with APP_DIR's requirements too) for builds that cannot reach PyPI.
# hadolint ignore=DL3057
FROM scratch AS wheels
COPY requirements/wheels/ /wheels/

# The demo app (the default image): the runtime with app/wsgistack_demo/.
FROM runtime AS demo
ENV APP_MODULE=wsgistack_demo.wsgi:application
COPY app/wsgistack_demo/ /srv/wsgistack_demo/
