"""The directory a build owns for its spill and temp files, beside the output (so renames stay on one file
system). It goes on every exit path Python sees; what a SIGKILL leaves, the next run in the same place removes
(a run's pid is in its names, and a name whose process is gone is stale)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prep.outputs import TEMP_PREFIX, make_dirs

WORKDIR_PREFIX = ".prep-build."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sweep_stale(directory: Path) -> list[Path]:
    """Remove the work directories and temp files that dead runs left in `directory`; returns them."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        for prefix in (WORKDIR_PREFIX, TEMP_PREFIX):
            pid = entry.name.removeprefix(prefix).split(".", 1)[0]
            if entry.name.startswith(prefix) and pid.isdigit() and not _pid_alive(int(pid)):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


class WorkDir:
    """`with WorkDir(parent) as path:` a fresh directory, removed with everything in it at the end."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent

    def __enter__(self) -> Path:
        make_dirs(self.parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}.", dir=self.parent))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
