"""supervisord event listener: end the container when a program fails for good.

On PROCESS_STATE_FATAL of any program named on the command line (supervisord
gave up restarting it), stop the other programs gracefully through
supervisord's XML-RPC interface, then end supervisord with SIGKILL: tini (PID 1)
then exits with 137, a non-zero status, so Docker's restart policy replaces the
whole container. (supervisord itself always exits 0 on shutdown, which would
read as a clean stop.)
"""

import os
import signal
import sys

from supervisor import childutils


def main(watched: set[str]) -> None:
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event = childutils.get_headers(payload.split("\n", 1)[0])
        name = event.get("processname", "")
        if headers["eventname"] == "PROCESS_STATE_FATAL" and name in watched:
            print(
                f"fatal_listener: {name} failed for good; stopping the container",
                file=sys.stderr,
                flush=True,
            )
            rpc = childutils.getRPCInterface(os.environ)
            for other in sorted(watched - {name}):
                try:
                    rpc.supervisor.stopProcess(other, True)
                except Exception as exc:  # already stopped, or failed too
                    print(f"fatal_listener: stopping {other}: {exc}", file=sys.stderr, flush=True)
            os.kill(os.getppid(), signal.SIGKILL)
            return
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    # supervisord stops the listener with SIGTERM when it shuts down: exit 0,
    # so a clean `docker stop` doesn't log "stopped: fatal (terminated by SIGTERM)".
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    main(set(sys.argv[1:]))
