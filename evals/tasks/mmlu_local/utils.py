"""Loads one MMLU subject (its local layout: prep/benchmarks/mmlu.py) into the `question, subject, choices,
answer` rows lm-eval's mmlu expects."""

from __future__ import annotations

import datasets

from evals.tasks import resolve_data_dir
from prep.benchmarks import mmlu


def read_split(path, subject: str) -> datasets.Dataset:
    rows = mmlu.read_split(path)
    return datasets.Dataset.from_dict(
        {
            "question": [q.question for q in rows],
            "subject": [subject] * len(rows),
            "choices": [list(q.choices) for q in rows],
            "answer": [q.answer for q in rows],
        }
    )


def load_mmlu(subject: str, data_dir: str | None = None, **_metadata) -> datasets.DatasetDict:
    root = resolve_data_dir(data_dir, f"mmlu_local_{subject}")
    return datasets.DatasetDict(
        {split: read_split(mmlu.split_path(root, subject, split), subject) for split in ("test", "dev")}
    )
