"""Stream raw records from a hub dataset or local parquet/JSON/JSONL files (JSON and JSONL also compressed),
without loading a file whole. Every file problem is a PrepError naming the file and the row it stopped at."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import ijson
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from prep.config import PrepError, SourceConfig
from prep.paths import Hub, Local, file_kind, hub_offline, resolve_path
from prep.rows import RawRecord

FORMATS = (".parquet", ".jsonl", ".json")
PARQUET_BATCH = 8192
# pyarrow's default pre-buffering keeps every row group it has read cached until the file is closed: the
# whole compressed file in memory (1.2 GB at 2M bench rows). A 1 MB buffered stream holds one page at a time
# and reads as fast (measured on the bench corpus).
PARQUET_READ = {"pre_buffer": False, "buffer_size": 1 << 20}
# No dataset row nests this deep (orjson writes no deeper); ijson's builder took 4 GB for a 50k-deep item.
MAX_DEPTH = 255


def open_binary(path: Path) -> BinaryIO:
    """The file's bytes, decompressed by its extension (.gz, .zst, .bz2, .xz) as `datasets` does."""
    compression = file_kind(path)[1]
    if compression == ".zst":
        import zstandard

        return cast(BinaryIO, zstandard.open(path, "rb"))
    openers: dict[str, Callable[[Path, str], Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(compression)
    return cast(BinaryIO, opener(path, "rb") if opener else path.open("rb"))


def read_parquet(path: Path) -> Iterator[RawRecord]:
    row = 0
    for batch in pq.ParquetFile(path, **PARQUET_READ).iter_batches(batch_size=PARQUET_BATCH):
        for data in batch.to_pylist():
            row += 1
            yield RawRecord(str(path), row, data)


def read_jsonl(path: Path) -> Iterator[RawRecord]:
    with open_binary(path) as f:
        for row, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                yield RawRecord(str(path), row, None, f"invalid JSON: {e}")
                continue
            if isinstance(data, dict):
                yield RawRecord(str(path), row, data)
            else:
                yield RawRecord(str(path), row, None, f"a {type(data).__name__}, not a JSON object")


def _depth_checked(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """ijson's events, refused past MAX_DEPTH. The check runs in Python per event: a JSON list reads 3-4x
    slower than with ijson alone (bench/readers_bench.py), seconds for WizardLM's 375 MB file."""
    depth = 0
    for ev in events:
        kind = ev[1]
        if kind == "start_map" or kind == "start_array":
            depth += 1
            if depth > MAX_DEPTH:
                raise ijson.JSONError(f"nested deeper than {MAX_DEPTH} levels")
        elif kind == "end_map" or kind == "end_array":
            depth -= 1
        yield ev


SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_HIGH, _LOW = rb"\\u[dD][89abAB][0-9a-fA-F]{2}", rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
LONE_SURROGATE = re.compile(_HIGH + b"(?!" + _LOW + b")|(?<!" + _HIGH + b")" + _LOW)


def _has_lone_surrogates(path: Path) -> bool:
    """Whether the file escapes a UTF-16 surrogate without its pair (\\ud800 alone): yajl, ijson's fast
    backend, turns one into "?" without a word, so such a file goes through ijson's Python backend, which
    keeps it for the row check. Pairs (escaped emoji) are fine. The scan runs at about 1 GB/s."""
    with open_binary(path) as f:
        tail = b""
        while chunk := f.read(1 << 22):
            window = tail + chunk
            if SURROGATE_ESCAPE.search(window) and LONE_SURROGATE.search(window):
                return True
            tail = chunk[-12:]
    return False


def read_json(path: Path) -> Iterator[RawRecord]:
    """A JSON list streams item by item (WizardLM's file is 375 MB); anything else is read as JSONL."""
    with open_binary(path) as f:
        head = f.read(4096).lstrip()
    if not head.startswith(b"["):
        yield from read_jsonl(path)
        return
    exact = _has_lone_surrogates(path)
    backend = ijson.get_backend("python") if exact else ijson
    with open_binary(path) as f:
        row = 0
        try:
            for data in backend.items(_depth_checked(backend.parse(f, use_float=True)), "item"):
                row += 1
                if not isinstance(data, dict):
                    yield RawRecord(str(path), row, None, f"a {type(data).__name__}, not a JSON object")
                    continue
                if exact:
                    try:  # a lone surrogate: orjson, which reads JSONL, refuses it there too
                        orjson.dumps(data)
                    except orjson.JSONEncodeError as e:
                        yield RawRecord(str(path), row, None, f"invalid JSON: {e}")
                        continue
                yield RawRecord(str(path), row, data)
        except ijson.JSONError as e:
            # A broken list loses every item after the break: that is a file error, not a row to skip.
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise PrepError(f"{path}: invalid JSON after item {row}: {detail}; fix or remove the file") from e


READERS: dict[str, Callable[[Path], Iterator[RawRecord]]] = {
    ".parquet": read_parquet,
    ".jsonl": read_jsonl,
    ".json": read_json,
}
FILE_ERRORS = (OSError, EOFError, lzma.LZMAError, pa.ArrowException)


def read_file(path: Path) -> Iterator[RawRecord]:
    """The records of one local file; a file that cannot be read to its end is one PrepError."""
    row = 0
    try:
        for record in READERS[file_kind(path)[0]](path):
            row = record.row
            yield record
    except FILE_ERRORS as e:
        what = f"{type(e).__name__}: {e}" if not isinstance(e, OSError) or not e.strerror else e.strerror
        where = f"after row {row}" if row else "at the start"
        raise PrepError(f"{path}: cannot read {where} ({' '.join(what.split())}); fix, re-download or remove it") from e


def file_audit(path: Path) -> dict[str, Any]:
    """A file read, as the manifest's `inputs` lists it."""
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": sha256(path)}


def sha256(path: Path) -> str:
    """The file's sha256, as the hub's LFS pointers give it, so a build can be audited against its sources;
    about 0.5-0.9 GB/s (bench/readers_bench.py), seconds per GB next to a build's minutes."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise PrepError(f"{path}: cannot read ({e.strerror or e}); check its permissions") from e


@dataclass
class SourceInput:
    """One source's records, their count when known up front, and what was read, for the manifest."""

    records: Iterator[RawRecord]
    total: int | None
    audit: dict[str, Any] = field(default_factory=dict)


def resolve_source(source: SourceConfig) -> Local | Hub:
    """Where `source` reads from; refuses, before any data is read, what cannot be read."""
    try:
        where = resolve_path(source.path, FORMATS, patterns=source.data_files)
    except PrepError as e:
        raise PrepError(f"source {source.name!r}: path {e}") from e
    if isinstance(where, Hub) and hub_offline():
        raise PrepError(
            f"source {source.name!r}: path {source.path!r} is no local file or directory (nothing at "
            f"{Path(source.path).absolute()}), and as a hub id it needs the hub, which is offline "
            "(HF_HUB_OFFLINE=1): fix the path, or download the dataset and point `path` at it"
        )
    return where


def open_source(source: SourceConfig, where: Local | Hub) -> SourceInput:
    """Records of one source, as `resolve_source` found it."""
    if isinstance(where, Hub):
        hub = {"hub": where.repo_id, "revision": source.revision, "data_files": source.data_files}
        return SourceInput(read_hub(source), None, hub)
    files: list[dict[str, Any]] = []
    skipped = [{"path": str(p), "reason": reason} for p, reason in where.skipped]

    def records() -> Iterator[RawRecord]:
        for path in where.files:
            files.append(file_audit(path))
            yield from read_file(path)

    return SourceInput(records(), count_rows(where.files), {"files": files, "skipped": skipped})


def count_rows(files: list[Path]) -> int | None:
    """Row total for the progress bar when it is free to know (parquet metadata)."""
    if not all(file_kind(f)[0] == ".parquet" for f in files):
        return None
    total = 0
    for f in files:
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except FILE_ERRORS as e:
            raise PrepError(f"{f}: not a readable parquet file ({' '.join(str(e).split())}); re-download it") from e
    return total


def read_hub(source: SourceConfig) -> Iterator[RawRecord]:
    import datasets  # heavy import, only for hub sources

    label = f"hf://{source.path}/{source.data_files or source.split}"
    try:
        ds = datasets.load_dataset(
            source.path,
            name=source.subset,
            data_files=source.data_files,
            split=source.split,
            revision=source.revision,
            streaming=True,
        )
        for row, data in enumerate(ds, start=1):
            yield RawRecord(label, row, dict(data))
    except (OSError, ValueError, ConnectionError, datasets.exceptions.DatasetNotFoundError) as e:
        raise PrepError(f"source {source.name!r}: {label}: {type(e).__name__}: {str(e).splitlines()[0]}") from e
