"""HellaSwag (Zellers et al. 2019): a context and four endings, one of them right.

Two local layouts:
- `<root>/hellaswag/hellaswag_val_sample.jsonl`: validation rows in the original schema (`activity_label`,
  `ctx_a`, `ctx_b`, `label`, `endings`, ...), what the offline lm-eval task scores;
- `<root>/hellaswag/hellaswag_val_full.txt`: the full validation set (10,042 items) in 6 lines an item:
  `<activity_label>: <ctx>`, the gold label, the 4 endings; what decontamination and the eval-cost count read.
`clean` is lm-eval's `preprocess` (WikiHow bracket artifacts out)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE = "hellaswag/hellaswag_val_sample.jsonl"
FULL = "hellaswag/hellaswag_val_full.txt"
FIELDS = ("activity_label", "ctx_a", "ctx_b", "label", "endings")


@dataclass(frozen=True)
class Item:
    activity_label: str
    ctx: str
    label: int
    endings: tuple[str, ...]


def clean(text: str) -> str:
    """lm-eval's hellaswag `preprocess`."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub("\\[.*?\\]", "", text).replace("  ", " ")


def read_sample(path: Path) -> list[dict[str, Any]]:
    """The original-schema rows, each checked for the fields lm-eval's task reads."""
    if not path.is_file():
        raise FileNotFoundError(f"HellaSwag file missing: {path}")
    rows = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path} line {line_no}: not JSON ({exc})") from exc
            missing = [k for k in FIELDS if k not in row]
            if missing:
                raise ValueError(f"{path} line {line_no}: missing field(s) {missing}")
            if len(row["endings"]) != 4:
                raise ValueError(f"{path} line {line_no}: field endings has {len(row['endings'])} items, expected 4")
            rows.append(row)
    return rows


def parse_full(lines: list[str], where: str) -> Iterator[Item]:
    """The 6-lines-an-item text form; `where` names the file in errors."""
    if len(lines) % 6:
        raise ValueError(f"{where}: {len(lines)} lines, not a multiple of 6 (label: ctx, gold, 4 endings)")
    for i in range(0, len(lines), 6):
        label, sep, ctx = lines[i].partition(": ")
        if not sep or not lines[i + 1].strip().isdigit():
            raise ValueError(f"{where} line {i + 1}: expected `<activity_label>: <ctx>` then a gold label")
        yield Item(label, ctx, int(lines[i + 1]), tuple(lines[i + 2 : i + 6]))


def read_full(path: Path) -> list[Item]:
    return list(parse_full(path.read_text(encoding="utf-8").splitlines(), str(path)))


def item(record: dict[str, Any]) -> tuple[str, list[str]]:
    """A hub row, a sample row or a full-file item as a decontamination item."""
    ctx = record.get("ctx") or f"{record['ctx_a']} {record['ctx_b']}"
    return ctx, [f"{ctx} {ending}" for ending in record["endings"]]
