"""Text normalization shared by dedup and decontamination, so both sides of a comparison agree."""

from __future__ import annotations

import re

from prep.rows import Row

TAG = re.compile(r"\[[^\]\n]{0,40}\]")  # HellaSwag's WikiHow "[title]"/"[step]" markers
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-cased alphanumeric runs: case, whitespace and punctuation do not matter."""
    return _WORD.findall(TAG.sub(" ", text.lower()))


def prompt_text(row: Row) -> str:
    """The human turns: what dedup compares (system prompts vary per row for the same question)."""
    if "prompt" not in row.memo:
        row.memo["prompt"] = "\n".join(row.turns("human"))
    return row.memo["prompt"]


def response_text(row: Row) -> str:
    if "response" not in row.memo:
        row.memo["response"] = "\n".join(row.turns("gpt"))
    return row.memo["response"]
