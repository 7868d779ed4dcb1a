"""Every repository path the docs, the README and the code's comments name
exists, and the README stays a short front page whose folder map is the
repository's root.

A path is a token that starts with one of the repository's top-level folders
(`nginx/templates/http.conf.template`, `tests/stack/...`); paths inside a
container (`/etc/nginx/...`) are absolute and not checked, and an example path
on a user's machine (`myapp/`) starts with no folder of ours. `<name>` and `*`
are placeholders: some file must match. A path the repository ignores (made by
a command: the TLS certificate, the wheelhouse) needs only its folder."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

from .conftest import ROOT

# Where code comments and docstrings are read.
CODE_FOLDERS = ("server/src", "app", "loadtest", "scripts", "nginx", "monitoring", "deploy")
COMMENTED = {".sh", ".yml", ".yaml", ".conf", ".template", ".toml", ".mtail", ".cfg", ".ini"}
README_LIMIT = 8704  # bytes: the README is a front page; the rest is in docs/


def _tracked() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [line for line in out.splitlines() if (ROOT / line).exists()]


def _top_level_folders() -> list[str]:
    return sorted({path.split("/")[0] for path in _tracked() if "/" in path} - {".ci"})


def _path_pattern() -> re.Pattern[str]:
    folders = "|".join(re.escape(folder) for folder in _top_level_folders())
    return re.compile(rf"(?<![\w./~$@:-])((?:{folders})/[\w./*<>{{}}-]*)")


def _ignored(path: str) -> bool:
    """Whether git ignores ``path`` (a file some command makes)."""
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0


def _exists(token: str) -> bool:
    token = re.sub(r":\d+$", "", token.rstrip(".,:;!?"))
    pattern = re.sub(r"<[^>]*>", "*", token)
    if any(c in pattern for c in "*?[{"):
        pattern = re.sub(r"\{[^}]*\}", "*", pattern)
        return any(ROOT.glob(pattern.rstrip("/")))
    path = ROOT / token
    return path.exists() or (_ignored(token) and path.parent.is_dir())


def _missing(text: str, where: str) -> list[str]:
    pattern = _path_pattern()
    return [f"{where}: {token}" for token in pattern.findall(text) if not _exists(token)]


def _python_comments(path: Path) -> str:
    source = path.read_text()
    parts = [
        token.string
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            parts.append(ast.get_docstring(node) or "")
    return "\n".join(parts)


def _hash_comments(path: Path) -> str:
    return "\n".join(line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line)


def _code_files() -> list[Path]:
    files = []
    for name in _tracked():
        path = ROOT / name
        if not name.startswith(tuple(f + "/" for f in CODE_FOLDERS)):
            continue
        if path.suffix == ".py" or path.suffix in COMMENTED or path.name == "Dockerfile":
            files.append(path)
    return files


def test_paths_in_the_docs_and_the_readme_exist():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [m for page in pages for m in _missing(page.read_text(), page.name)]
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def test_paths_in_code_comments_and_docstrings_exist():
    files = _code_files()
    assert len(files) > 30
    missing = []
    for path in files:
        text = _python_comments(path) if path.suffix == ".py" else _hash_comments(path)
        missing += _missing(text, str(path.relative_to(ROOT)))
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def test_the_path_check_finds_paths_and_skips_the_others():
    text = (
        "see `nginx/templates/http.conf.template`, server/src/wsgistack/config.py, "
        "loadtest/scenarios/*.toml and monitoring/<image>/Dockerfile; not /etc/nginx/x, "
        "myapp/__init__.py, https://example.org/app/x or nginx/nope.conf."
    )
    assert _missing(text, "t") == ["t: nginx/nope.conf."]


def test_the_readme_is_a_short_front_page():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes: move the detail into docs/"


def test_the_readme_folder_map_is_the_repository_root():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## What is where") :]
    mapped = {name.rstrip("/") for name in re.findall(r"^\| `([^`]+)` \|", section, re.M)}
    root = {path.split("/")[0] for path in _tracked() if not path.startswith(".")}
    assert mapped == root
