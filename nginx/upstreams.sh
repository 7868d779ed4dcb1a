#!/bin/sh
# The app upstream from Docker's DNS, for nginx 1.22, which resolves the names
# in `upstream { server ...; }` only when it loads its configuration (the
# `resolve` parameter came to open-source nginx in 1.27.3). App replicas come
# and go (scale, restart, rolling update), so this script writes
# /tmp/nginx/conf.d/upstream.conf with one `server ADDRESS:PORT` line per
# address of $UPSTREAM_HOST (Docker's DNS answers with every replica of a
# compose service; in Swarm use `tasks.<service>`) whose readiness check
# ($UPSTREAM_READY_PATH) answers 2xx, and reloads nginx (graceful: no request
# is dropped) when that set changes. The upstream block keeps its keep-alive
# pool, which a `proxy_pass http://$variable` design would lose.
#
# A replica whose IP address is listed in $drain_file (one per line; written by
# scripts/rolling-restart.sh before it stops that replica) is left out, so
# nginx stops sending it requests before it stops accepting them.
# A replica DNS stops naming leaves at once: Swarm takes a task out of DNS 2 s
# before it sends the task's stop signal, and Kubernetes a terminating pod out
# of a headless Service before its preStop hook, so that it leaves nginx while
# it still serves. An answer with no address at all is taken for a DNS failure
# (a lookup error, Docker's DNS restarting): the replicas in use then stay
# while they answer. With no replica ready, every resolved one is used (fail
# open: the app answers for itself). With none resolving or answering (the
# only replica restarting), a `down` placeholder makes nginx answer 502 at once
# instead of waiting for a connect to a vanished address.
#
#   upstreams.sh render   write the file once (before nginx starts)
#   upstreams.sh watch    every UPSTREAM_CHECK_INTERVAL seconds: re-check, and
#                         rewrite and reload nginx on a change (runs forever)
set -u
host=${UPSTREAM_HOST:-app}
port=${UPSTREAM_PORT:-8000}
ready_path=${UPSTREAM_READY_PATH:-/-/ready}  # the server's own --health-path (the app image's WSGISTACK_HEALTH_PATH)
interval=${UPSTREAM_CHECK_INTERVAL:-1}
conf=/tmp/nginx/conf.d/upstream.conf
state=/tmp/nginx/upstream.replicas  # the replicas in $conf, as `replicas` prints them
drain_file=/tmp/nginx/upstream.draining
template=/etc/nginx/upstream.conf.template

log() {
    echo "upstreams: $*" >&2
}

# HOST:PORT of every address the name resolves to, one per line, sorted.
resolved() {
    getent ahosts "$host" | awk '$2 == "STREAM" { print $1 }' | sort -u \
        | while read -r address; do
            case $address in
                *:*) echo "[$address]:$port" ;;
                *) echo "$address:$port" ;;
            esac
        done
}

# Whether the replica HOST:PORT ([IPv6]:PORT) is being drained.
draining() {
    ip=${1%:*}
    ip=${ip#[}
    [ -s "$drain_file" ] && grep -qxF "${ip%]}" "$drain_file"
}

# The state of replica $1 by its readiness check: "ready" (2xx), "unready"
# (another status), or "down" (no connection: refused, or an address whose
# container is gone). One that connects but answers slowly is busy, not
# unready: it counts as ready, so a replica under load never flaps out.
probe() {
    result=$(curl -s -o /dev/null -w '%{http_code} %{time_connect}' --connect-timeout 0.5 \
        --max-time 2 "http://$1$ready_path" 2>/dev/null)
    case ${result% *} in
        2??) echo ready ;;
        000 | '') [ "${result#* }" = 0.000000 ] && echo down || echo ready ;;
        *) echo unready ;;
    esac
}

# The replicas to use, space-separated: of the addresses the name resolves to
# (those in use now if it resolves to none: a DNS failure must not drop a live
# replica), the ready ones; if none is, the resolved ones (fail open: a
# starting replica refuses at once, the app answers for itself); if none
# resolves either, nothing (the `down` placeholder: 502 at once).
replicas() {
    all=$(for replica in $(resolved); do draining "$replica" || echo "$replica"; done)
    ready=""
    for replica in ${all:-$current}; do
        draining "$replica" && continue
        [ "$(probe "$replica")" = ready ] && ready="$ready $replica"
    done
    if [ -n "$ready" ]; then
        echo $ready
    else
        echo $all
    fi
}

# Write the upstream file for the replicas in $1 (atomically: nginx may be
# reading it); none: the placeholder.
write() {
    servers=""
    for replica in $1; do
        servers="$servers    server $replica max_fails=1 fail_timeout=10s;
"
    done
    if [ -z "$servers" ]; then
        servers="    server 127.0.0.1:$port down;"
    fi
    UPSTREAM_SERVERS=$servers envsubst '${UPSTREAM_SERVERS}' <"$template" >"$conf.new"
    mv "$conf.new" "$conf"
    echo "$1" >"$state"
}

current=""
case ${1:-} in
    render)
        current=$(replicas)
        if [ -n "$current" ]; then
            write "$current"
            log "$host -> $current"
        else
            write ""
            log "$host does not resolve yet; answering 502 until it does"
        fi
        ;;
    watch)
        current=$(cat "$state")
        while :; do
            sleep "$interval"
            next=$(replicas)
            if [ "$next" != "$current" ]; then
                write "$next"
                if nginx -e stderr -s reload; then
                    log "$host -> ${next:-none (502 until one is back)} (nginx reloaded)"
                    current=$next
                fi
            fi
        done
        ;;
    *)
        echo "usage: upstreams.sh render|watch" >&2
        exit 2
        ;;
esac
