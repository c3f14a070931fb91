"""Rows that passed the streaming steps, parked on disk so whole-corpus steps (dedup, mixture) keep only
small per-row arrays in memory, never the texts."""

from __future__ import annotations

import os
import tempfile
from array import array
from pathlib import Path
from typing import Any

import orjson

BUFFER = 1 << 20  # syscalls are dear (7 us a pread on the bench machine): write in 1 MB pieces


class Spill:
    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".prep-spill.", suffix=".jsonl", dir=directory)
        self.path = Path(name)
        self._f = os.fdopen(fd, "w+b", buffering=BUFFER)
        self._size = 0
        self._unflushed = False
        self.offsets = array("q")
        self.sources = array("H")  # index into the config's source list, per row

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, line: bytes, source_index: int) -> int:
        """`line` is the row's JSON (orjson.dumps(row.to_json())), without the line break."""
        self.offsets.append(self._size)
        self.sources.append(source_index)
        self._f.write(line + b"\n")
        self._size += len(line) + 1
        self._unflushed = True
        return len(self.offsets) - 1

    def raw(self, index: int) -> bytes:
        """The row's JSON line, as it will be written to the output (in shuffled order): one pread of exactly
        the line. (A memory map is 3x faster but counts up to 64 KB of the spill per read in the resident set,
        through the kernel's fault-around: 1 GB more at 500k rows.)"""
        if self._unflushed:
            self._f.flush()
            self._unflushed = False
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else self._size
        return os.pread(self._f.fileno(), end - self.offsets[index], self.offsets[index])

    def get(self, index: int) -> dict[str, Any]:
        return orjson.loads(self.raw(index))

    def close(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
