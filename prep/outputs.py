"""Refuse a build whose outputs would overwrite one of its inputs, each other or another build's files:
`--dropped` equal to `--out` lost every kept row, `--out` naming a source, a benchmark file or the config
overwrote it, and `--out` naming another build's manifest replaced it with data rows."""

from __future__ import annotations

import os
import re
from pathlib import Path

from prep.errors import PrepError
from prep.paths import special_file


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


# the names a build gives the files beside OUT: OUT.manifest.json, OUT.card.md, OUT.card.<plot>.png
COMPANION = re.compile(r"\.(manifest\.json|card\.md|card\.[A-Za-z0-9_-]+\.png)$")


def refuse_companion_names(outputs: dict[str, Path]) -> None:
    """An output the user names (`--out`, `--dropped`) may not carry the name of a file a build writes beside
    its OUT: it would overwrite another build's manifest or card, and leave that build's set inconsistent."""
    for role, path in outputs.items():
        if match := COMPANION.search(path.name):
            raise PrepError(
                f"{role} {path} is named like a build's {match.group(1)} (another build's file beside its OUT); "
                "give a data file's name: the manifest and card go beside it"
            )


def refuse_aliases(outputs: dict[str, Path], inputs: list[tuple[str, Path]]) -> None:
    """`outputs` maps a role (`--out`) to a path, `inputs` pairs a role (`source 'orca'`) with each file it
    reads; raises PrepError for the first output that is an input or another output."""
    outs = list(outputs.items())
    for i, (role, path) in enumerate(outs):
        fix = "give a file name" if role.startswith("--") else "move it away or give another --out"
        if path.is_dir():
            raise PrepError(f"{role} {path} is a directory; {fix}")
        if what := special_file(path):  # renaming over /dev/null would replace the device with a file
            raise PrepError(f"{role} {path} is {what}; {fix}")
        for other_role, other in outs[:i]:
            if _same(path, other):
                raise PrepError(f"{role} {path} is also {other_role}: give each output its own file")
        for in_role, source in inputs:
            if _same(path, source):
                raise PrepError(f"{role} {path} is {in_role}, an input: writing it would destroy it; pick another path")
