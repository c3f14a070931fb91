"""What made an output, for its manifest: this project's version and git commit, and the versions of the
libraries whose behaviour decides which rows are kept (each step names its own in `libraries`)."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PROJECT = "merged-instruct"
ROOT = Path(__file__).resolve().parents[1]
ALWAYS = ("numpy", "pyarrow", "numba", "orjson")  # reading, row hashing, the written bytes


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit(root: Path = ROOT) -> str | None:
    """The checkout's HEAD commit, or None when the code does not run from a git checkout (an installed wheel,
    a container copy) or git is missing."""
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def provenance(libraries: list[str]) -> dict[str, Any]:
    names = sorted({*ALWAYS, *libraries})
    return {
        "version": package_version(PROJECT),
        "git_commit": git_commit(),
        "libraries": {name: package_version(name) for name in names},
    }
