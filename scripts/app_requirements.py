"""Print the requirements of a user's project, one per line, for
scripts/wheels.sh to download: its requirements.txt (with what it includes
by -r), or its pyproject.toml's [project] dependencies and the build
backend of [build-system] (the image installs the project with pip).

    python3 scripts/app_requirements.py /path/to/project

Standard library only (runs on the host before any venv exists).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(project: Path) -> list[str]:
    """The requirement lines of ``project``; [] when it declares none."""
    listed = project / "requirements.txt"
    if listed.is_file():
        return [f"-r {listed.resolve()}"]
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text())
        build = data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"])
        return [*data.get("project", {}).get("dependencies", []), *build]
    return []


if __name__ == "__main__":
    for line in requirements(Path(sys.argv[1])):
        print(line)
