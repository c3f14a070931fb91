"""A build's manifest read back (`prep compare`, `prep decontam-report`): a file that is not one, or one too
damaged to read, is one PrepError naming it, before any of it is used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from prep.errors import PrepError
from prep.paths import read_capped, special_file

MAX_BYTES = 256 << 20  # a manifest lists every input file with its hash: megabytes, never gigabytes
HINT = "give the OUT.manifest.json a `prep build` wrote"


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest in `path` as a JSON object; refuses, without reading them whole, a FIFO, a file too large to
    be a manifest (the data file given by mistake) and what is not a JSON object."""
    if what := special_file(path):
        raise PrepError(f"{path}: {what}; {HINT}")
    data = read_capped(path, MAX_BYTES, f"{MAX_BYTES >> 20} MiB, so not a build manifest", HINT)
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise PrepError(f"{path}: not JSON ({e}); {HINT}") from e
    if not isinstance(manifest, dict):
        raise PrepError(f"{path}: a JSON {type(manifest).__name__}, not a build manifest; {HINT}")
    return manifest
