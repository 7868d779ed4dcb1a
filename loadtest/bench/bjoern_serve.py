"""``python -m loadtest.bench.bjoern_serve HOST:PORT WORKERS MODULE:APP``: bjoern with
pre-forked workers, for ``make bench``.

bjoern (a WSGI server in C on libev) has no command line and one process; its README's
way to use more CPUs is to listen once and fork: ``bjoern.listen()`` in the parent, then
``bjoern.run()`` in each of WORKERS children. SIGTERM to this parent stops them.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys


def main(argv: list[str]) -> int:
    bind, workers, target = argv
    host, _, port = bind.rpartition(":")
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name)
    import bjoern  # only in the bench venv (requirements/bench-c.txt)

    bjoern.listen(app, host, int(port))
    children = []
    for _ in range(int(workers)):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            bjoern.run()
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        os.waitpid(child, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
