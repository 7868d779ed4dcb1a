"""``--reload``: restart the workers gracefully when the code changes.

A daemon thread in the master watches the current directory (the app's
code) and the ``--reload-extra-file`` paths with watchfiles (inotify, or
polling with ``WATCHFILES_FORCE_POLLING=1``, e.g. for bind mounts from
another OS). On a change to a ``.py`` file there, or to any extra path, it
sends the master SIGHUP: the reload HUP does anyway, new workers with
freshly imported code, then the old ones finish their requests and exit.
"""

from __future__ import annotations

import os
import signal
import threading

from .logs import error_log

INSTALL_HINT = "--reload needs watchfiles: pip install 'wsgistack[reload]'"


def available() -> bool:
    """True when watchfiles can be imported."""
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return False
    return True


def watch_for_changes(extra_files: list[str]) -> threading.Thread:
    """Start the watcher thread for the current directory and ``extra_files``
    (files or folders, relative to the current directory). Returns the thread."""
    from watchfiles import DefaultFilter, watch

    root = os.getcwd()
    extras = [os.path.abspath(path) for path in extra_files]
    ignore = DefaultFilter()  # .git, __pycache__, virtualenvs, editor swap files

    def relevant(change: object, path: str) -> bool:
        if any(path == extra or path.startswith(extra + os.sep) for extra in extras):
            return True
        return path.endswith(".py") and ignore(change, path)  # type: ignore[arg-type]

    def run() -> None:
        paths = [root, *(extra for extra in extras if os.path.exists(extra))]
        watching = False
        # yield_on_timeout: an empty set each second without changes; the first
        # one means the watches are in place (a large tree takes a while).
        for changes in watch(
            *paths, watch_filter=relevant, raise_interrupt=False, yield_on_timeout=True
        ):
            if not changes:
                if not watching:
                    watching = True
                    error_log.info("reload: watching %s", ", ".join(paths))
                continue
            names = sorted(
                {os.path.relpath(p, root) if p.startswith(root + os.sep) else p for _, p in changes}
            )
            error_log.info("reload: %s changed, restarting the workers", ", ".join(names))
            os.kill(os.getpid(), signal.SIGHUP)

    thread = threading.Thread(target=run, name="wsgistack-reloader", daemon=True)
    thread.start()
    return thread
