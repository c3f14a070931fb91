"""Refuse a build whose outputs would overwrite one of its inputs or each other: `--dropped` equal to `--out`
lost every kept row, and `--out` naming a source, a benchmark file or the config overwrote it."""

from __future__ import annotations

import os
from pathlib import Path

from prep.errors import PrepError


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def refuse_aliases(outputs: dict[str, Path], inputs: list[tuple[str, Path]]) -> None:
    """`outputs` maps a role (`--out`) to a path, `inputs` pairs a role (`source 'orca'`) with each file it
    reads; raises PrepError for the first output that is an input or another output."""
    outs = list(outputs.items())
    for i, (role, path) in enumerate(outs):
        if path.is_dir():
            raise PrepError(f"{role} {path} is a directory; give a file name")
        for other_role, other in outs[:i]:
            if _same(path, other):
                raise PrepError(f"{role} {path} is also {other_role}: give each output its own file")
        for in_role, source in inputs:
            if _same(path, source):
                raise PrepError(f"{role} {path} is {in_role}, an input: writing it would destroy it; pick another path")
