"""Benchmark items (MMLU, HellaSwag, ARC, TruthfulQA) from the hub or local files, as question + texts. What a
benchmark's record holds, and its local layouts, are its module's in prep/benchmarks (one per benchmark)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prep import readers
from prep.benchmarks import BENCHMARKS, hellaswag
from prep.errors import PrepError, registered
from prep.paths import Hub, Local, file_kind, hub_offline, resolve_path
from prep.readers import file_audit, open_binary


@dataclass(frozen=True)
class Item:
    key: str  # names the item in reports: "<file or split>:<row>"
    question: str  # matched exactly after normalization
    texts: tuple[str, ...]  # scanned for long n-grams (question with its choices or endings)


class BenchmarkConfig(BaseModel):
    """Where a benchmark's reference items come from, in the same spirit as a source."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="one of BENCHMARKS: how its records become items")
    path: str = Field(description="hub dataset id, or a local file, directory or glob")
    subset: str | None = Field(None, description="hub config name (cais/mmlu: all)")
    split: str = "test"
    revision: str | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        return registered(name, BENCHMARKS, "benchmark")


def read_hellaswag_txt(path: Path) -> Iterator[dict[str, Any]]:
    """HellaSwag's 6-lines-an-item text form (prep/benchmarks/hellaswag.py), compressed or not."""
    with open_binary(path) as f:
        lines = io.TextIOWrapper(f, encoding="utf-8").read().splitlines()
    try:
        items = list(hellaswag.parse_full(lines, str(path)))
    except ValueError as e:
        raise PrepError(str(e)) from e
    for it in items:
        yield {"activity_label": it.activity_label, "ctx": it.ctx, "endings": list(it.endings)}


def read_csv(path: Path) -> Iterator[dict[str, Any]]:
    with open_binary(path) as f:
        yield from csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", newline=""))


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Unlike a source's rows, a broken benchmark line is an error: a skipped item would go unchecked."""
    for record in readers.read_jsonl(path):
        if record.data is None:
            raise PrepError(f"{path} line {record.row}: {record.error}; fix the benchmark file")
        yield record.data


def read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    for record in readers.read_parquet(path):
        yield record.data or {}


FORMATS = {".csv": read_csv, ".jsonl": read_jsonl, ".parquet": read_parquet, ".txt": read_hellaswag_txt}


def read_file(path: Path) -> Iterator[dict[str, Any]]:
    row = 0
    try:
        for record in FORMATS[file_kind(path)[0]](path):
            row += 1
            yield record
    except UnicodeDecodeError as e:
        raise PrepError(f"{path}: not UTF-8 after item {row} ({e.reason}); save it as UTF-8") from e
    except csv.Error as e:
        raise PrepError(f"{path}: not a CSV file after item {row} ({e})") from e
    except readers.file_errors() as e:
        raise PrepError(f"{path}: cannot read after item {row} ({' '.join(str(e).split())}); re-download it") from e


def records(bench: BenchmarkConfig, where: Local | Hub) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(where, Local):
        for f in where.files:
            for n, r in enumerate(read_file(f), start=1):
                yield f"{f.name}:{n}", r
        return
    import datasets  # heavy import, only for hub benchmarks

    try:
        ds = datasets.load_dataset(bench.path, name=bench.subset, split=bench.split, revision=bench.revision)
    except Exception as e:  # datasets raises a dozen types for "not there" (offline, gated, no such config)
        offline = " (the hub is offline: HF_HUB_OFFLINE=1, and it is not in the cache)" if hub_offline() else ""
        raise PrepError(
            f"benchmark {bench.name}: cannot load hub dataset {bench.path!r}{offline}: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; point `path` at a local copy"
        ) from e
    for n, r in enumerate(ds, start=1):
        yield f"{bench.split}:{n}", dict(r)


def resolve_benchmark(bench: BenchmarkConfig) -> Local | Hub:
    where = resolve_path(bench.path, tuple(FORMATS), recursive=True, compressed=(".csv", ".jsonl", ".txt"))
    # a benchmark directory is read whole: files it holds beside the items (a README) must be named
    if isinstance(where, Local) and (
        unread := [f"{p} ({reason})" for p, reason in where.skipped if not p.name.lower().endswith(".md")]
    ):
        raise PrepError(f"benchmark {bench.name}: cannot read {unread[0]}; give a path to the item files")
    return where


def load_items(bench: BenchmarkConfig) -> tuple[list[Item], dict[str, Any]]:
    """The benchmark's items, and what was read for them as the manifest's `inputs` lists it."""
    where = resolve_benchmark(bench)
    if isinstance(where, Local):
        audit: dict[str, Any] = {
            "files": [file_audit(f) for f in where.files],
            "skipped": [{"path": str(p), "reason": reason} for p, reason in where.skipped],
        }
    else:
        audit = {"hub": bench.path, "subset": bench.subset, "split": bench.split, "revision": bench.revision}
    items = []
    for key, r in records(bench, where):
        try:
            question, texts = BENCHMARKS[bench.name](r)
        except (KeyError, TypeError) as e:
            raise PrepError(f"benchmark {bench.name} {key}: not a {bench.name} item, missing field {e}") from e
        items.append(Item(key, question, tuple(texts)))
    return items, audit
