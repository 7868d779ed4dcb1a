"""supervisord event listener: end the container when a program fails for good.

A program named on the command line has failed for good on
PROCESS_STATE_FATAL (supervisord gave up starting it) or on
PROCESS_STATE_EXITED with ``expected:1``: it exited by itself with one of its
``exitcodes``, which ``autorestart=unexpected`` never restarts (supervisord's
"Event Types" documentation). A ``supervisorctl stop`` is STOPPED, neither.
The listener then stops the other programs gracefully through supervisord's
XML-RPC interface and ends supervisord with SIGKILL: tini (PID 1) then exits
with 137, a non-zero status, so Docker's restart policy replaces the whole
container. (supervisord itself always exits 0 on shutdown, which would read as
a clean stop.)
"""

import os
import signal
import sys

from supervisor import childutils


def failed_for_good(eventname: str, event: dict[str, str]) -> bool:
    """Whether this state change (headers of its payload) leaves the program down for good."""
    if eventname == "PROCESS_STATE_FATAL":
        return True
    return eventname == "PROCESS_STATE_EXITED" and event.get("expected") == "1"


def main(watched: set[str]) -> None:
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event = childutils.get_headers(payload.split("\n", 1)[0])
        name = event.get("processname", "")
        if name in watched and failed_for_good(headers["eventname"], event):
            rpc = childutils.getRPCInterface(os.environ)
            how = "could not be started"
            if headers["eventname"] == "PROCESS_STATE_EXITED":
                how = "exited"
                try:
                    how += f" with status {rpc.supervisor.getProcessInfo(name)['exitstatus']}"
                except Exception:  # the status only adds detail to the line
                    pass
            print(
                f"fatal_listener: {name} {how}, for good; stopping the container",
                file=sys.stderr,
                flush=True,
            )
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
