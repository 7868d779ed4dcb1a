"""``wsgistack [flags] APP_MODULE`` (or ``python -m wsgistack``): run the server;
``--help`` lists the flags."""

from __future__ import annotations

import sys

from . import config, reloader
from ._types import WSGIApp
from .metrics import files as metric_files


def main(argv: list[str] | None = None) -> int:
    """Run the server with command-line flags ``argv`` (default ``sys.argv[1:]``).

    Returns the exit status: 0 after a clean stop (or ``--check-config`` passing),
    1 when the app cannot be loaded for ``--check-config`` or an address cannot
    be bound, 2 for bad configuration, 3 if the app fails to boot.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        cfg, check_only = config.load(argv)
    except config.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.reload and not reloader.available():
        print(f"error: {reloader.INSTALL_HINT}", file=sys.stderr)
        return 2
    from . import logs
    from .wsgi import load_app

    logs.setup(cfg.errorlog, cfg.log_level, cfg.access_logfile, cfg.access_log_style)
    logs.error_log.info("%s", cfg.describe())
    if check_only:  # touches no metrics file: a server may be running beside it
        try:
            load_app(cfg.app)
        except BaseException:
            logs.error_log.exception("cannot load the application %s", cfg.app)
            return 1
        print("configuration OK", file=sys.stderr)
        return 0
    metric_files.wipe_dir()
    metric_files.set_identity("master")
    from .arbiter import Arbiter
    from .metrics import (
        instruments as metrics,  # creates the instruments: after the wipe and the naming
    )

    app: WSGIApp | None = None
    if cfg.preload:
        try:
            app = load_app(cfg.app)
        except BaseException:
            logs.error_log.exception("cannot load the application %s", cfg.app)
            metrics.APP_IMPORT_FAILURES.inc()
            return 3
    try:
        return Arbiter(cfg, reload_config=lambda: config.load(argv)[0], app=app).run()
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
