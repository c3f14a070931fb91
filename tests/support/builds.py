"""Builds of a mixture in the test process, as `prep build` makes them."""

from __future__ import annotations

from pathlib import Path

import orjson

from prep.config import MixtureConfig
from prep.pipeline import build


def curate(tmp_path: Path, sources: list[dict], curation: dict, seed: int = 1, name: str = "out.jsonl"):
    """`build` of `sources` with `curation`: the output rows, the manifest and the --dropped records."""
    out = tmp_path / name
    dropped = tmp_path / f"{name}.dropped.jsonl"
    config = MixtureConfig.model_validate({"seed": seed, "sources": sources, "curation": curation})
    manifest = build(config, out, dropped=dropped, progress=False)
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    return rows, manifest, [orjson.loads(x) for x in dropped.read_bytes().splitlines()]
