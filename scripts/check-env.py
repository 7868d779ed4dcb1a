"""Refuse the settings of wsgistack 0.1 left in an existing clone's .env.

    python3 scripts/check-env.py [.env]

``make up`` runs it before anything starts: a renamed variable would
otherwise be ignored without a word (compose passes only the names
docker-compose.yml lists). One line per problem, naming the new spelling;
exit 2 if there is any, 0 otherwise. Standard library only: it runs on the
host before any venv exists.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# wsgistack 0.1's server variables (SERVER_<SETTING>) -> their new names.
SERVER_SETTINGS = (
    "BIND WORKERS THREADS CHMOD_SOCKET REUSE_PORT MAX_WORKER_MEMORY SCRIPT_NAME BACKLOG "
    "TIMEOUT GRACEFUL_TIMEOUT KEEP_ALIVE CLIENT_HEADER_TIMEOUT LIMIT_REQUEST_LINE "
    "LIMIT_REQUEST_FIELDS LIMIT_REQUEST_FIELD_SIZE LIMIT_REQUEST_BODY FORWARDED_ALLOW_IPS "
    "ACCESS_LOGFILE ACCESS_LOG_STYLE ERRORLOG LOG_LEVEL MAX_REQUESTS MAX_REQUESTS_JITTER "
    "PRELOAD CONFIG"
).split()
RENAMED_VALUES = {
    ("APP_MODULE", "app.wsgi:application"): "wsgistack_demo.wsgi:application",
    ("ENGINE", "custom"): "wsgistack",
}


def problems(text: str) -> list[str]:
    """One message per renamed variable or value in the env file ``text``."""
    found = []
    for line in text.splitlines():
        match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if not match:
            continue
        name, value = match.group(1), match.group(2).strip().strip("'\"")
        if name.startswith("SERVER_") and name[len("SERVER_") :] in SERVER_SETTINGS:
            found.append(f"{name} is no longer read: rename it WSGISTACK_{name[len('SERVER_') :]}")
        new = RENAMED_VALUES.get((name, value))
        if new:
            found.append(f"{name}={value} is no longer valid: use {name}={new}")
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else ".env")
    if not path.exists():
        return 0
    found = problems(path.read_text())
    for message in found:
        print(f"{path}: {message} (CHANGELOG.md: Upgrading)", file=sys.stderr)
    return 2 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
