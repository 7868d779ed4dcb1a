#!/usr/bin/env bash
# `docker compose [FLAGS] up -d --wait` for `make up` and `make dev`. When a
# service does not become healthy, compose says only that a dependency failed:
# print the last log lines of every service that is not running and healthy,
# where the reason is, then exit with compose's status.
set -uo pipefail
docker compose "$@" up -d --wait && exit 0
status=$?
docker compose "$@" ps -a --format '{{.Service}} {{.State}} {{.Health}}' |
    while read -r service state health; do
        # healthy, or never started (it waited for one that failed)
        [ "$state/${health:-healthy}" != running/healthy ] && [ "$state" != created ] || continue
        echo "compose-up: $service is $state${health:+ ($health)}; its last log lines:" >&2
        docker compose "$@" logs --no-color --tail 20 "$service" >&2
    done
exit "$status"
