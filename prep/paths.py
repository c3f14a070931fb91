"""One rule for "is this a local path or a hub id?", shared by sources, benchmark references and preflight's
dataset check, and one answer to "which files does it name?" that reports every file it will not read.

The rule: a path that exists, or a glob, is local; a spec shaped like `owner/name` or a bare legacy `name`
(`gpt2`, `squad`; at most one slash, not ending in a file type's suffix, starting with a letter or digit) is
a hub id; anything else is a local path that is missing. Hub names may hold dots (`teknium/OpenHermes-2.5`,
`mistralai/Mistral-7B-v0.1`): only a suffix that is a file type (`data/merged.jsonl`) makes it a path."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from prep.errors import PrepError

COMPRESSIONS = (".gz", ".zst", ".bz2", ".xz")  # what `datasets` also decompresses by extension
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
FILE_TYPES = {  # suffixes that make a hub-id-shaped spec a file path
    *(".parquet", ".jsonl", ".json", ".csv", ".tsv", ".txt", ".arrow", ".md", ".yml", ".yaml", ".zip", ".tar"),
    *(".bin", ".ftz", ".safetensors", ".pt", ".gguf"),
    *COMPRESSIONS,
}


@dataclass(frozen=True)
class Local:
    files: list[Path]  # the files to read, sorted so runs are reproducible
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # named by the spec but not read, and why


@dataclass(frozen=True)
class Hub:
    repo_id: str


def file_kind(path: Path) -> tuple[str, str]:
    """(format suffix, compression suffix or ""), lower-cased: `A.JSONL.gz` -> (".jsonl", ".gz")."""
    name = path.name.lower()
    compression = next((c for c in COMPRESSIONS if name.endswith(c)), "")
    return Path(name.removesuffix(compression)).suffix, compression


def is_hub_id(spec: str) -> bool:
    """Whether `spec`, when nothing local has its name, is a hub repo id."""
    return bool(HUB_ID.match(spec)) and Path(spec).suffix.lower() not in FILE_TYPES


def hub_offline() -> bool:
    return any(
        os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def resolve_path(
    spec: str,
    formats: tuple[str, ...],
    *,
    patterns: str | list[str] | None = None,
    base: Path | None = None,
    recursive: bool = False,
    compressed: tuple[str, ...] = (".json", ".jsonl"),
) -> Local | Hub:
    """What `spec` names: the readable files (format suffix in `formats`, compressed only for `compressed`
    formats) with the ones skipped and why, or a hub id. A directory is listed (through `patterns` when
    given, recursively when `recursive`); a glob is expanded. Raises PrepError when nothing readable is named."""
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_file():
        if reason := _unreadable(path, formats, compressed):
            raise PrepError(f"{path}: {reason}")
        return Local([path])
    if path.is_dir():
        names = [patterns] if isinstance(patterns, str) else patterns or ["**/*" if recursive else "*"]
        candidates = {Path(f) for n in names for f in glob.glob(str(path / n), recursive=recursive)}
    elif glob.has_magic(spec):
        candidates = {Path(f) for f in glob.glob(str(path), recursive=True)}
    elif is_hub_id(spec):
        return Hub(spec)
    else:
        raise PrepError(
            f"{spec}: no such file or directory (looked at {path.absolute()}), and not a hub id (owner/name)"
        )
    files, skipped = [], []
    for f in sorted(candidates):
        if f.is_dir():
            if not recursive:
                skipped.append((f, "a directory (sub-directories are not read)"))
        elif reason := _unreadable(f, formats, compressed):
            skipped.append((f, reason))
        else:
            files.append(f)
    if not files:
        found = f"; skipped: {', '.join(f'{p.name} ({r})' for p, r in skipped[:3])}" if skipped else ""
        raise PrepError(f"{spec}: no {'/'.join(formats)} files there{found}")
    return Local(files, skipped)


def _unreadable(path: Path, formats: tuple[str, ...], compressed: tuple[str, ...]) -> str | None:
    """Why `path` will not be read, or None."""
    if path.name.startswith("."):
        return "a hidden file"
    kind, compression = file_kind(path)
    if kind not in formats or (compression and kind not in compressed):
        readable = ", ".join(formats) + (
            f" ({', '.join(compressed)} also {'/'.join(COMPRESSIONS)})" if compressed else ""
        )
        return f"unsupported file type {kind + compression or '(none)'}; readable: {readable}"
    return None
