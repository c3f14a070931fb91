"""Atomic, hashed output: a reader never sees a half-written file, and the manifest can name its sha256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson


class HashingWriter:
    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.sha256.update(data)


@contextmanager
def atomic_output(path: Path) -> Iterator[HashingWriter]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the old file stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            writer = HashingWriter(f)
            yield writer
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    with atomic_output(path) as f:
        f.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def jsonl_line(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"
