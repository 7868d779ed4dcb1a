#!/usr/bin/env bash
# Print the architecture of the machine the images run on, as pip's manylinux
# platform tags spell it (manylinux2014_x86_64, manylinux_2_28_aarch64): the
# Docker server's (`docker info`: the daemon host's `uname -m`), not this
# host's, which differs on an Apple silicon Mac (arm64) or with a remote
# DOCKER_HOST. Exits 2 naming the value when there are no wheels for it here.
set -euo pipefail
arch=$(docker info --format '{{.Architecture}}')
case $arch in
    x86_64 | aarch64) echo "$arch" ;;
    *) echo "docker-arch: the Docker server's architecture '$arch' is not x86_64 or aarch64" >&2; exit 2 ;;
esac
