#!/usr/bin/env bash
# Fill requirements/wheels/ with the app image's Python wheels (and the build
# backend and Cython of the server's own wheel), downloaded on the host. The Dockerfile installs from there with --no-index when it holds
# wheels (pip inside a build may not reach PyPI, e.g. behind a TLS-intercepting
# proxy whose CA the image does not trust), and from PyPI when it is empty.
# Idempotent: pip skips wheels already downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(bash scripts/docker-arch.sh)   # the Docker server's, where the images run
python3 -m pip download --quiet --only-binary=:all: \
    --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
    --python-version 3.11 --implementation cp \
    -r requirements/app.txt -c requirements/constraints.txt -d requirements/wheels
# The build backend and Cython, which the image's build stage builds the server's
# wheel with (its compiled hot path): for the image's Python and architecture.
python3 -m pip download --quiet --only-binary=:all: --no-deps \
    --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
    --python-version 3.11 --implementation cp \
    -r requirements/build.txt -d requirements/wheels
# A user's project (make up APP_DIR=...): its own requirements, resolved on
# their own (no template pins), into requirements/wheels/app/.
rm -rf requirements/wheels/app
if [ -n "${APP_DIR:-}" ]; then
    wanted=$(mktemp)
    trap 'rm -f "$wanted"' EXIT
    python3 scripts/app_requirements.py "$APP_DIR" >"$wanted"
    if [ -s "$wanted" ]; then
        python3 -m pip download --quiet --only-binary=:all: \
            --platform "manylinux2014_$arch" --platform "manylinux_2_28_$arch" \
            --python-version 3.11 --implementation cp \
            -r "$wanted" -d requirements/wheels/app
    fi
    echo "wheels: $(find requirements/wheels/app -name '*.whl' 2>/dev/null | wc -l) for $APP_DIR" >&2
fi
echo "wheels: $(ls requirements/wheels/*.whl | wc -l) in requirements/wheels" >&2
