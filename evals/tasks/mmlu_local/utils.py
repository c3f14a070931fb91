"""Loads one MMLU subject from `<data_dir>/mmlu/{test,dev}/<subject>_{test,dev}.csv` (cais/mmlu columns,
choices split into choice0..choice3) into the `question, subject, choices, answer` rows lm-eval's mmlu
expects. Read with the csv module so every choice stays the exact string ("None", "0.50")."""

from __future__ import annotations

import csv

import datasets

from evals.tasks import resolve_data_dir

HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]


def read_split(path, subject: str) -> datasets.Dataset:
    if not path.is_file():
        raise FileNotFoundError(f"MMLU file missing: {path}")
    rows: dict[str, list] = {"question": [], "subject": [], "choices": [], "answer": []}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != HEADER:
            raise ValueError(f"{path}: header {header} is not {HEADER}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(HEADER):
                raise ValueError(f"{path} line {line}: {len(row)} fields, expected {len(HEADER)}")
            if row[5] not in ("0", "1", "2", "3"):
                raise ValueError(f"{path} line {line}: field answer={row[5]!r} is not an index 0-3")
            rows["question"].append(row[0])
            rows["subject"].append(subject)
            rows["choices"].append(row[1:5])
            rows["answer"].append(int(row[5]))
    return datasets.Dataset.from_dict(rows)


def load_mmlu(subject: str, data_dir: str | None = None, **_metadata) -> datasets.DatasetDict:
    root = resolve_data_dir(data_dir, f"mmlu_local_{subject}") / "mmlu"
    return datasets.DatasetDict(
        {split: read_split(root / split / f"{subject}_{split}.csv", subject) for split in ("test", "dev")}
    )
