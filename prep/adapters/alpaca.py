"""Alpaca-style rows: instruction, optional input, output (also the shape of Open-Platypus)."""

from __future__ import annotations

from typing import Any

from prep.adapters.sharegpt import original_id
from prep.rows import RawRecord, Row, require_str
from prep.source import SourceConfig


def prompt_and_answer(data: dict[str, Any]) -> tuple[str, str]:
    """The input, when present, follows the instruction after a blank line (Alpaca's own prompt order)."""
    instruction = require_str(data, "instruction")
    extra = require_str(data, "input", allow_empty=True) if data.get("input") is not None else ""
    output = require_str(data, "output")
    prompt = f"{instruction.strip()}\n\n{extra.strip()}" if extra.strip() else instruction
    return prompt, output


def conversation(prompt: str, answer: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    prompt, answer = prompt_and_answer(data)
    return Row(
        id=f"{source.name}/{original_id(data, index)}",
        source=source.name,
        subsource=None,
        teacher=source.teacher,
        conversations=conversation(prompt, answer),
    )
