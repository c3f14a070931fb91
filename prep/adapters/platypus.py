"""garage-bAInd/Open-Platypus: Alpaca fields plus `data_source`, which names the origin set (the subsource)."""

from __future__ import annotations

from prep.adapters.alpaca import conversation, prompt_and_answer
from prep.rows import RawRecord, Row, require_str
from prep.source import SourceConfig


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    prompt, answer = prompt_and_answer(data)
    return Row(
        id=f"{source.name}/{index}",
        source=source.name,
        subsource=require_str(data, "data_source"),
        teacher=source.teacher,
        conversations=conversation(prompt, answer),
    )
