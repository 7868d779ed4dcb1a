"""The prometheus-client multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``).

Kept apart from ``server.metrics`` on purpose: wiping must happen before any
instrument exists, and importing ``server.metrics`` creates them.
"""

from __future__ import annotations

import glob
import os


def wipe_dir() -> None:
    """Remove the last run's metric files (prometheus-client requires it at start).

    Creates the directory if missing; does nothing when the variable is unset.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.unlink(path)
