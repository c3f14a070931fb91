"""Rows that passed the streaming steps, parked on disk so whole-corpus steps (dedup, mixture) keep only
small per-row arrays in memory, never the texts."""

from __future__ import annotations

import os
import tempfile
from array import array
from pathlib import Path
from typing import Any

import orjson

from prep.rows import Row


class Spill:
    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=".prep-spill.", suffix=".jsonl", dir=directory)
        self.path = Path(name)
        self._f = os.fdopen(fd, "w+b")
        self.offsets = array("q")
        self.sources = array("H")  # index into the config's source list, per row

    def __len__(self) -> int:
        return len(self.offsets)

    def append(self, row: Row, source_index: int) -> int:
        self.offsets.append(self._f.tell())
        self.sources.append(source_index)
        self._f.write(orjson.dumps(row.to_json()) + b"\n")
        return len(self.offsets) - 1

    def raw(self, index: int) -> bytes:
        """The row's JSON line, as it will be written to the output."""
        self._f.seek(self.offsets[index])
        return self._f.readline()

    def get(self, index: int) -> dict[str, Any]:
        return orjson.loads(self.raw(index))

    def close(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
