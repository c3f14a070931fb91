"""Loads the HellaSwag validation rows from `<data_dir>/hellaswag/hellaswag_val_sample.jsonl` (the
original schema); `process_docs` is lm-eval's own, so queries and endings are cleaned identically."""

from __future__ import annotations

import json

import datasets
from lm_eval.tasks.hellaswag.utils import process_docs  # noqa: F401  (named by hellaswag_local.yaml)

from evals.tasks import resolve_data_dir

FIELDS = ("activity_label", "ctx_a", "ctx_b", "label", "endings")
FILE = "hellaswag/hellaswag_val_sample.jsonl"


def load_hellaswag(data_dir: str | None = None, **_metadata) -> datasets.DatasetDict:
    path = resolve_data_dir(data_dir, "hellaswag_local") / FILE
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
    return datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)})
