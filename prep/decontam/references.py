"""Benchmark items (MMLU, HellaSwag, ARC, TruthfulQA) from the hub or local files, as question + texts.
A new benchmark is one function from a record to (question, texts) plus one line in BENCHMARKS."""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from prep.config import PrepError, registered


@dataclass(frozen=True)
class Item:
    key: str  # names the item in reports: "<file or split>:<row>"
    question: str  # matched exactly after normalization
    texts: tuple[str, ...]  # scanned for long n-grams (question with its choices or endings)


def _mmlu(r: dict[str, Any]) -> tuple[str, list[str]]:
    choices = r["choices"] if "choices" in r else [r[f"choice{i}"] for i in range(4)]
    return r["question"], [f"{r['question']} {' '.join(map(str, choices))}"]


def _hellaswag(r: dict[str, Any]) -> tuple[str, list[str]]:
    ctx = r.get("ctx") or f"{r['ctx_a']} {r['ctx_b']}"
    return ctx, [f"{ctx} {ending}" for ending in r["endings"]]


def _arc(r: dict[str, Any]) -> tuple[str, list[str]]:
    return r["question"], [f"{r['question']} {' '.join(r['choices']['text'])}"]


def _truthfulqa(r: dict[str, Any]) -> tuple[str, list[str]]:
    answers = r.get("correct_answers") or [r.get("best_answer", "")]
    return r["question"], [r["question"], *(f"{r['question']} {a}" for a in answers)]


BENCHMARKS = {"mmlu": _mmlu, "hellaswag": _hellaswag, "arc": _arc, "truthfulqa": _truthfulqa}


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
    """The 6-lines-per-item text form: `<activity_label>: <ctx>`, gold label, 4 endings."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) % 6:
        raise PrepError(f"{path}: {len(lines)} lines, not a multiple of 6 (label: ctx, gold, 4 endings)")
    for i in range(0, len(lines), 6):
        label, sep, ctx = lines[i].partition(": ")
        if not sep or not lines[i + 1].strip().isdigit():
            raise PrepError(f"{path} line {i + 1}: expected `<activity_label>: <ctx>` then a gold label")
        yield {"activity_label": label, "ctx": ctx, "endings": lines[i + 2 : i + 6]}


def read_file(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)
    elif path.suffix == ".jsonl":
        with path.open("rb") as f:
            yield from (orjson.loads(line) for line in f if line.strip())
    elif path.suffix == ".parquet":
        yield from pq.read_table(path).to_pylist()
    elif path.suffix == ".txt":
        yield from read_hellaswag_txt(path)
    else:
        raise PrepError(f"{path}: benchmark files are .csv, .jsonl, .parquet or HellaSwag .txt")


def records(bench: BenchmarkConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    path = Path(bench.path)
    if path.exists() or glob.has_magic(bench.path):
        files = sorted(
            p
            for p in (
                path.rglob("*")
                if path.is_dir()
                else map(Path, glob.glob(bench.path))
                if glob.has_magic(bench.path)
                else [path]
            )
            if p.is_file() and p.suffix != ".md"
        )
        if not files:
            raise PrepError(f"benchmark {bench.name}: no files at {bench.path}")
        for f in files:
            for n, r in enumerate(read_file(f), start=1):
                yield f"{f.name}:{n}", r
        return
    if bench.path.count("/") != 1:
        raise PrepError(f"benchmark {bench.name}: {bench.path!r} is neither a local path nor a hub id")
    import datasets  # heavy import, only for hub benchmarks

    ds = datasets.load_dataset(bench.path, name=bench.subset, split=bench.split, revision=bench.revision)
    for n, r in enumerate(ds, start=1):
        yield f"{bench.split}:{n}", dict(r)


def load_items(bench: BenchmarkConfig) -> list[Item]:
    items = []
    for key, r in records(bench):
        try:
            question, texts = BENCHMARKS[bench.name](r)
        except (KeyError, TypeError) as e:
            raise PrepError(f"benchmark {bench.name} {key}: not a {bench.name} item, missing field {e}") from e
        items.append(Item(key, question, tuple(texts)))
    return items
