"""Stream raw records from a hub dataset or local parquet/JSON/JSONL files (JSON and JSONL also compressed),
without loading a file whole. Every file problem is a PrepError naming the file and the row it stopped at."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import itertools
import lzma
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import ijson
import orjson
from ijson.common import ObjectBuilder

from prep.errors import PrepError
from prep.paths import Hub, Local, file_kind, hub_offline, resolve_path, skip_kind
from prep.rows import RawRecord
from prep.source import SourceConfig

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

        # zstandard's reader has no readline: JSONL in .zst failed at its first line
        return cast(BinaryIO, io.BufferedReader(zstandard.open(path, "rb"), buffer_size=1 << 20))
    openers: dict[str, Callable[[Path, str], Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(compression)
    return cast(BinaryIO, opener(path, "rb") if opener else path.open("rb"))


def read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq  # loaded by the first parquet file, not to check a config

    row = 0
    for batch in pq.ParquetFile(path, **PARQUET_READ).iter_batches(batch_size=PARQUET_BATCH):
        for data in batch.to_pylist():
            row += 1
            yield RawRecord(str(path), row, data)


BOM = b"\xef\xbb\xbf"
# UTF-16/32 (a byte-order mark, or ASCII with NUL bytes between): not JSON's UTF-8, so every line would be an
# invalid row; the file is refused whole instead.
WIDE_TEXT = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"{\x00", b"[\x00", b"\x00{", b"\x00[")
LINE_END = re.compile(rb"\r\n?|\n")
HEAD = 1 << 16


def head_of(path: Path) -> bytes:
    """The file's first bytes (decompressed), less a UTF-8 BOM; a PrepError for UTF-16/32 text."""
    with open_binary(path) as f:
        head = f.read(HEAD)
    if head.startswith(WIDE_TEXT):
        raise PrepError(
            f"{path}: UTF-16 or UTF-32 text, and JSON is UTF-8: convert it (iconv -t UTF-8) and build again"
        )
    return head.removeprefix(BOM)


def json_lines(f: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of a JSON Lines stream less a leading UTF-8 BOM; a line ends in \\n, \\r\\n or a lone
    \\r, as pyarrow's JSON reader (and so `datasets`) splits them. A file with CR-only line ends is split in
    1 MB chunks: iterating it by \\n would hold it whole as one line."""
    first = f.read(HEAD).removeprefix(BOM)
    number = 0
    if b"\r" in first and b"\n" not in first:
        rest = first
        while True:
            chunk = f.read(1 << 20)
            parts = LINE_END.split(rest + chunk)
            rest = parts.pop() if chunk else b""
            for part in parts:
                number += 1
                yield number, part
            if not chunk:
                return
    for line in itertools.chain(io.BytesIO(first + f.readline()), f):
        cr = line.find(b"\r")
        if cr != -1 and not (cr == len(line) - 2 and line.endswith(b"\r\n")):
            for part in LINE_END.split(line.rstrip(b"\r\n")):
                number += 1
                yield number, part
        else:
            number += 1
            yield number, line


def read_jsonl(path: Path) -> Iterator[RawRecord]:
    with open_binary(path) as f:
        for row, line in json_lines(f):
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


STARTS, ENDS = ("start_map", "start_array"), ("end_map", "end_array")


def list_items(events: Iterator[tuple[str, Any]]) -> Iterator[Any]:
    """The items of a JSON list, built from ijson's basic events and refused past MAX_DEPTH. ijson's `items`
    reads `parse` events, whose prefix strings grow with the depth: 200 KB of `[` made 10 GB of them before a
    depth check could see one. This reads as fast (bench/readers_bench.py)."""
    depth = 0
    builder: ObjectBuilder | None = None
    for event, value in events:
        if event in STARTS:
            depth += 1
            if depth > MAX_DEPTH:
                raise ijson.JSONError(f"nested deeper than {MAX_DEPTH} levels")
            if depth == 2:
                builder = ObjectBuilder()
        elif event in ENDS:
            depth -= 1
            if depth == 1 and builder is not None:
                builder.event(event, value)
                yield builder.value
                builder = None
                continue
        if builder is not None:
            builder.event(event, value)
        elif depth == 1 and event not in STARTS:
            yield value  # a scalar item


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


def _past_bom(path: Path) -> BinaryIO:
    """The file opened past its UTF-8 BOM, if it has one (compressed streams cannot seek back)."""
    f = open_binary(path)
    if f.read(len(BOM)) == BOM:
        return f
    f.close()
    return open_binary(path)


def read_json(path: Path) -> Iterator[RawRecord]:
    """A JSON list streams item by item (WizardLM's file is 375 MB); anything else is read as JSON Lines. As in
    `datasets`, the content decides, not the extension (.json or .jsonl)."""
    if not head_of(path).lstrip().startswith(b"["):
        yield from read_jsonl(path)
        return
    exact = _has_lone_surrogates(path)
    backend = ijson.get_backend("python") if exact else ijson
    with _past_bom(path) as f:
        row = 0
        try:
            for data in list_items(backend.basic_parse(f, use_float=True)):
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
    ".jsonl": read_json,
    ".json": read_json,
}


def file_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged or truncated file raises (pyarrow's errors included, once it is loaded)."""
    import pyarrow as pa

    return (OSError, EOFError, lzma.LZMAError, pa.ArrowException)


def read_file(path: Path) -> Iterator[RawRecord]:
    """The records of one local file; a file that cannot be read to its end is one PrepError."""
    row = 0
    try:
        for record in READERS[file_kind(path)[0]](path):
            row = record.row
            yield record
    except file_errors() as e:
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


def refuse_shared_files(sources: list[SourceConfig], wheres: list[Local | Hub]) -> None:
    """Each input file is read once per build: a file (by its real path, whatever links name it) or a hub
    dataset that an earlier source reads too is an error, unless the later source says `shares_files: true`."""
    first: dict[Any, tuple[str, str]] = {}  # real path or hub spec -> (source, as that source names it)
    for source, where in zip(sources, wheres, strict=True):
        named: list[tuple[Any, str]]
        if isinstance(where, Hub):
            named = [
                ((where.repo_id, source.subset, source.split, str(source.data_files), source.revision), source.path)
            ]
        else:
            named = [(os.path.realpath(f), str(f)) for f in where.files]
        for key, shown in named:
            if key in first and not source.shares_files:
                other, other_shown = first[key]
                same = shown if shown == other_shown else f"{shown}, also {other_shown}"
                raise PrepError(
                    f"sources {other!r} and {source.name!r} both read {same}: its rows would be in the output twice; "
                    f"name it in one source, or set `shares_files: true` on {source.name!r} to read it again on purpose"
                )
            first.setdefault(key, (source.name, shown))


def open_source(source: SourceConfig, where: Local | Hub) -> SourceInput:
    """Records of one source, as `resolve_source` found it."""
    if isinstance(where, Hub):
        hub = {"hub": where.repo_id, "revision": source.revision, "data_files": source.data_files}
        return SourceInput(read_hub(source), None, hub)
    files: list[dict[str, Any]] = []
    skipped = [{"path": str(p), "reason": reason} for p, reason in where.skipped]
    counts = Counter(skip_kind(reason) for _, reason in where.skipped)

    def records() -> Iterator[RawRecord]:
        for path in where.files:
            files.append(file_audit(path))
            yield from read_file(path)

    audit = {"files": files, "skipped": skipped, "skipped_by_reason": dict(sorted(counts.items()))}
    return SourceInput(records(), count_rows(where.files), audit)


def count_rows(files: list[Path]) -> int | None:
    """Row total for the progress bar when it is free to know (parquet metadata)."""
    if not all(file_kind(f)[0] == ".parquet" for f in files):
        return None
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except file_errors() as e:
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
