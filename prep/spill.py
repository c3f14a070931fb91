"""Rows that passed the streaming steps, parked on disk so whole-corpus steps (dedup, mixture) keep only
small per-row arrays in memory, never the texts."""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
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

    def _flush(self) -> None:
        if self._unflushed:
            self._f.flush()
            self._unflushed = False

    def lines(self, order: np.ndarray) -> Iterator[tuple[bytes, int]]:
        """The JSON lines of the rows in `order` (the output's shuffled order), joined in pieces of about
        BUFFER bytes: (piece, rows in it). One pread a row, and one write and one hash update a piece."""
        self._flush()
        starts = np.frombuffer(self.offsets, dtype=np.int64)
        lengths = np.diff(starts, append=self._size)
        fd, pread = self._f.fileno(), os.pread
        parts: list[bytes] = []
        size = 0
        for start, length in zip(starts[order].tolist(), lengths[order].tolist()):
            parts.append(pread(fd, length, start))
            size += length
            if size >= BUFFER:
                yield b"".join(parts), len(parts)
                parts, size = [], 0
        if parts:
            yield b"".join(parts), len(parts)

    def get(self, index: int) -> dict[str, Any]:
        """One row, read back with one pread of exactly its line. (A memory map is 3x faster but counts up to
        64 KB of the spill per read in the resident set, through the kernel's fault-around.)"""
        self._flush()
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else self._size
        return orjson.loads(os.pread(self._f.fileno(), end - self.offsets[index], self.offsets[index]))

    def close(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
