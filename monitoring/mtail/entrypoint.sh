#!/bin/sh
# Tail the file nginx appends its metrics lines to (nginx/templates/
# metrics-log.conf.template), in the volume shared with the proxy, and keep it
# bounded: every 10 s, once it passes 16 MiB, an empty file replaces it in one
# rename, so the path never goes missing. nginx opens the file for each line,
# so its next line goes to the new file; mtail sees a new file at the path
# (rotation), reads the old one to its end through its open descriptor, then
# the new one from its start: no line is lost. The old file's memory is freed
# when mtail closes it.
# Also tail tls.log, the error log of the TLS handshakes nginx refused
# (nginx/templates/default-server.conf.template). nginx keeps an error log
# open, so that one is emptied in place past 16 MiB (nginx appends, so its
# next line starts the file again; mtail reads a shrunk file from its start):
# the lines nginx writes between mtail's last read and the truncation are lost.
set -eu
dir=/run/nginx-log
umask 000   # nginx's workers (another user, another container) append to it
# The folder must be writable by both users: nginx creates files in it, and so
# does the rotation below.
if [ ! -w "$dir" ]; then
    echo "mtail: $dir is not writable by uid $(id -u) ($(stat -c '%U:%G %a' "$dir"));" \
        "the nginx-log volume must be writable by nginx's and mtail's users (mode 0777)" >&2
    exit 1
fi
# Created here unless nginx was first (Swarm and Kubernetes start the two
# side by side): nginx's file is readable, and the first rotation replaces it.
[ -e "$dir/metrics.log" ] || : >"$dir/metrics.log"
[ -e "$dir/tls.log" ] || : >"$dir/tls.log"
full() { [ "$(stat -c %s "$dir/$1" 2>/dev/null || echo 0)" -gt 16777216 ]; }
(
    while sleep 10; do
        if full metrics.log; then
            : >"$dir/metrics.log.new"
            mv -f "$dir/metrics.log.new" "$dir/metrics.log"
        fi
        if full tls.log; then
            truncate -s 0 "$dir/tls.log" || true   # nginx's, not yet writable: next time
        fi
    done
) &
exec mtail --progs /etc/mtail --logs "$dir/metrics.log" --logs "$dir/tls.log" --port 3903 \
    --emit_prog_label=false --logtostderr "$@"
