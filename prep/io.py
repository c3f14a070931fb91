"""Atomic, hashed output: a reader never sees a half-written file, files written together appear together,
the manifest can name their sha256, and their modes follow the umask as any other program's would."""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Any

import orjson

TEMP_PREFIX = ".prep-tmp."  # + pid: prep/workdir.py removes those a killed run left


class HashingWriter:
    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.sha256.update(data)


@cache
def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def file_mode() -> int:
    """0o666 less the umask: what open() would give a new file (mkstemp gives 0600 whatever the umask)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """0o777 less the umask: what mkdir would give (mkdtemp gives 0700)."""
    return 0o777 & ~_umask()


def _temp_beside(path: Path, directory: Path | None = None) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.{path.name}.", dir=directory or path.parent)
    os.fchmod(fd, file_mode())
    return fd, Path(tmp)


@contextmanager
def blocked_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done: renames that belong together are not split."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Outputs:
    """Files written to temps and renamed into place together by `commit()`, or not at all: a failure before
    the commit (or a signal, which the renames hold off) leaves every old file as it was."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir  # temps of files in its parent directory go here
        self._staged: list[tuple[Path, Path, IO[bytes]]] = []

    def open(self, path: Path) -> HashingWriter:
        same_dir = self.workdir is not None and self.workdir.parent.resolve() == path.parent.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_beside(path, self.workdir if same_dir else None)
        f = os.fdopen(fd, "wb", buffering=1 << 20)
        self._staged.append((path, tmp, f))
        return HashingWriter(f)

    def written(self, path: Path) -> Path:
        """The temp file that holds what was written for `path` so far (flushed), to read it before the commit."""
        for target, tmp, f in self._staged:
            if target == path:
                f.flush()
                return tmp
        raise KeyError(path)

    def commit(self) -> None:
        for _, _, f in self._staged:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        with blocked_signals():
            for path, tmp, _ in self._staged:
                os.replace(tmp, path)
            self._staged = []

    def discard(self) -> None:
        for _, tmp, f in self._staged:
            try:
                f.close()
            except OSError:
                pass  # a full disk fails the close's flush too; the unlink below still frees the space
            tmp.unlink(missing_ok=True)
        self._staged = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


@contextmanager
def atomic_output(path: Path) -> Iterator[HashingWriter]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the old file stays."""
    with Outputs() as outputs:
        writer = outputs.open(path)
        yield writer
        outputs.commit()


def write_json(path: Path, obj: Any) -> None:
    with atomic_output(path) as f:
        f.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def jsonl_line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"
