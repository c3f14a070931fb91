"""MMLU (Hendrycks et al. 2021): 57 subjects of four-choice questions.

Local layout (the `cais/mmlu` columns, the choices split): `<root>/mmlu/{test,dev}/<subject>_{test,dev}.csv`
with the header `question,choice0,choice1,choice2,choice3,answer`, answer an index 0-3. Read with the csv module
so every choice stays the exact string ("None", "0.50"); a malformed row is an error naming the file, line and
field."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIR = "mmlu"
HEADER = ["question", "choice0", "choice1", "choice2", "choice3", "answer"]
LETTERS = "ABCD"


@dataclass(frozen=True)
class Question:
    question: str
    choices: tuple[str, str, str, str]
    answer: int


def split_path(root: Path, subject: str, split: str) -> Path:
    return root / DIR / split / f"{subject}_{split}.csv"


def subjects(root: Path) -> list[str]:
    """The subjects whose test file `root` holds, sorted."""
    return sorted(p.name.removesuffix("_test.csv") for p in (root / DIR / "test").glob("*_test.csv"))


def read_split(path: Path) -> list[Question]:
    if not path.is_file():
        raise FileNotFoundError(f"MMLU file missing: {path}")
    out = []
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
            out.append(Question(row[0], (row[1], row[2], row[3], row[4]), int(row[5])))
    return out


def prompt(q: Question) -> str:
    """lm-eval's mmlu prompt of one question (its `doc_to_text`)."""
    c = q.choices
    return f"{q.question.strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"


def header(subject: str) -> str:
    """lm-eval's mmlu description: the subject line before the few-shot examples."""
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def item(record: dict[str, Any]) -> tuple[str, list[str]]:
    """A hub row (`choices` list) or a local row (choice0..choice3) as a decontamination item."""
    choices = record["choices"] if "choices" in record else [record[f"choice{i}"] for i in range(4)]
    return record["question"], [f"{record['question']} {' '.join(map(str, choices))}"]
