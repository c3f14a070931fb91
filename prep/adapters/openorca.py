"""Open-Orca/OpenOrca: id, system_prompt, question, response; the id prefix names the FLAN sub-collection."""

from __future__ import annotations

import re
from functools import cache

from prep.rows import RawRecord, Row, require_str
from prep.source import SourceConfig

SUBSOURCES = ("flan", "niv", "t0", "cot")
_GPT4 = re.compile(r"gpt-?4", re.IGNORECASE)
_GPT35 = re.compile(r"gpt-?3[._]?5", re.IGNORECASE)


@cache
def infer_teacher(file: str) -> str | None:
    """OpenOrca ships GPT-4 and GPT-3.5 completions as separate files, named after the model."""
    if _GPT35.search(file):
        return "gpt-3.5"
    if _GPT4.search(file):
        return "gpt-4"
    return None


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    oid = require_str(data, "id")
    system = require_str(data, "system_prompt", allow_empty=True)
    question = require_str(data, "question")
    response = require_str(data, "response")
    prefix = oid.split(".", 1)[0]
    turns = [{"from": "system", "value": system}] if system.strip() else []
    turns += [{"from": "human", "value": question}, {"from": "gpt", "value": response}]
    return Row(
        id=f"{source.name}/{oid}",
        source=source.name,
        subsource=prefix if prefix in SUBSOURCES else None,
        teacher=source.teacher or infer_teacher(record.file),
        conversations=turns,
    )
