#!/usr/bin/env bash
# Rolling restart of the app service (new code or image: build it first) with
# no failed request: start as many new replicas as are running, wait until
# they are healthy and nginx routes to them (nginx/upstreams.sh follows
# Docker's DNS), then, one old replica at a time: take it out of nginx's
# upstream (drain), stop it gracefully (its in-flight requests finish) and
# remove it. Draining first matters for requests nginx cannot retry: a POST
# sent to a replica that closes its listening socket at that moment fails.
#
# Environment: COMPOSE, the compose command (default `docker compose`; the
# tests add their --env-file and project).
set -euo pipefail
read -r -a compose <<<"${COMPOSE:-docker compose}"

log() { printf 'rolling-restart: %s\n' "$*" >&2; }

mapfile -t old < <("${compose[@]}" ps -q app)
[ ${#old[@]} -gt 0 ] || { log "no app replica is running"; exit 1; }
proxy=$("${compose[@]}" ps -q proxy)
[ -n "$proxy" ] || { log "the proxy is not running"; exit 1; }

# The IP address of container $1 (the app is on one network).
address() {
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | cut -d' ' -f1
}
# Whether nginx's upstream lists the IP address $1.
routed() { docker exec "$proxy" grep -q "server $1:" /tmp/nginx/conf.d/upstream.conf; }
# Wait until nginx routes to the IP address $1 ($2 = yes) or not ($2 = no), at most 30 s.
await() {
    for _ in $(seq 1 60); do
        if routed "$1"; then now=yes; else now=no; fi
        [ "$now" = "$2" ] && return 0
        sleep 0.5
    done
    return 1
}

log "starting ${#old[@]} new replica(s) next to ${#old[@]} old one(s)"
"${compose[@]}" up -d --no-deps --no-recreate --wait --scale "app=$((2 * ${#old[@]}))" app

for id in $("${compose[@]}" ps -q app); do
    [[ " ${old[*]} " == *" $id "* ]] && continue
    ip=$(address "$id")
    await "$ip" yes || { log "nginx did not pick up replica $ip within 30 s"; exit 1; }
    log "nginx routes to new replica $ip"
done

for id in "${old[@]}"; do
    ip=$(address "$id")
    docker exec "$proxy" sh -c "echo $ip >>/tmp/nginx/upstream.draining"
    await "$ip" no || log "nginx still routes to $ip after 30 s; stopping it anyway"
    log "stopping old replica $(docker inspect -f '{{.Name}}' "$id") ($ip)"
    docker stop -t 30 "$id" >/dev/null
    docker rm "$id" >/dev/null
    # The address is free again: a later replica may get it.
    docker exec "$proxy" sed -i "/^$ip\$/d" /tmp/nginx/upstream.draining
done
log "done: $("${compose[@]}" ps -q app | wc -l) replica(s)"
