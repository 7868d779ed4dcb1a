# The app image of a user's project: `make up APP_DIR=/path/to/project`
# builds this file with the project as its build context (compose: context
# ${APP_DIR}, dockerfile this file). Nothing of the template is copied: the
# server, supervisord and the container's scripts come from the runtime image
# (the root Dockerfile's `runtime` stage), which `make` builds first.
# app/project.Dockerfile.dockerignore keeps the project's .git, virtualenvs
# and .env files out of the build context, whatever the project's own
# .dockerignore says.
#
# Dependencies: the project's requirements.txt (or its pyproject.toml)
# resolved on its own, without the template's pins, into the runtime's
# virtualenv beside the server; `pip check` fails the build on a conflict
# with the server's own dependencies. Offline, from the wheelhouse image
# (scripts/wheels.sh downloads the project's requirements on the host).
# APP_BUILD runs once in the project folder at build time, e.g. Django's
# `python manage.py collectstatic --noinput` (its STATIC_ROOT then becomes
# the proxy's static files: STATIC_DIR).
ARG RUNTIME_IMAGE=wsgistack/runtime:latest
ARG WHEELS_IMAGE=wsgistack/wheels:latest

# hadolint ignore=DL3006,DL3057
FROM ${WHEELS_IMAGE} AS wheels

# hadolint ignore=DL3006,DL3057
FROM ${RUNTIME_IMAGE} AS install
# a throw-away stage: only /opt/venv is copied out
# hadolint ignore=DL3002
USER 0
COPY --from=wheels /wheels/ /tmp/wheels/
COPY . /tmp/project/
WORKDIR /tmp/project
# hadolint ignore=DL3042
RUN set -eu; \
    set --; \
    if [ -n "$(ls -A /tmp/wheels/app 2>/dev/null)" ]; then \
        set -- --no-index --find-links /tmp/wheels/app --find-links /tmp/wheels; fi; \
    if [ -f requirements.txt ]; then \
        pip install --no-cache-dir --no-warn-script-location "$@" -r requirements.txt; \
    elif [ -f pyproject.toml ] || [ -f setup.py ]; then \
        pip install --no-cache-dir --no-warn-script-location "$@" .; \
    fi; \
    if ! conflicts=$(pip check 2>&1); then \
        echo "app: the project's requirements conflict with the server's: $conflicts" >&2; \
        exit 1; \
    fi

# The runtime image's HEALTHCHECK, ENTRYPOINT and CMD carry over.
# hadolint ignore=DL3006,DL3057
FROM ${RUNTIME_IMAGE}
ARG APP_BUILD=
COPY --from=install /opt/venv /opt/venv
COPY . /srv/
USER 0
WORKDIR /srv
RUN if [ -n "$APP_BUILD" ]; then sh -c "$APP_BUILD"; fi
USER 10001:10001
