"""TruthfulQA (Lin et al. 2022), `truthfulqa/truthful_qa` generation config: no local layout here; the question
and each correct answer (else the best one) are scanned."""

from __future__ import annotations

from typing import Any


def item(record: dict[str, Any]) -> tuple[str, list[str]]:
    answers = record.get("correct_answers") or [record.get("best_answer", "")]
    return record["question"], [record["question"], *(f"{record['question']} {a}" for a in answers)]
