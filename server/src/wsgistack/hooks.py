"""Server hooks: the user's functions from a ``-c`` config file, called at
gunicorn's points with gunicorn's names (``config.HOOKS`` lists them), so
that, e.g., Sentry or OpenTelemetry can be started after fork
(``post_fork``, ``post_worker_init``).

A hook that raises never stops the server: its traceback is logged once,
with the hook's name, and the server goes on.
"""

from __future__ import annotations

from .config import Config
from .logs import error_log


def run_hook(cfg: Config, name: str, *args: object) -> None:
    """Call hook ``name`` of ``cfg`` with ``args`` if the config file set it.

    Exceptions are logged (``hook <name> raised``) and swallowed.
    """
    hook = getattr(cfg, name)
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:
        error_log.exception("hook %s raised", name)
