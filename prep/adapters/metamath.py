"""meta-math/MetaMathQA: `query`, `response`, `type` (how the question was bootstrapped: GSM_Rephrased,
MATH_SV, ...; the row's subsource) and `original_question`."""

from __future__ import annotations

from prep.adapters.alpaca import conversation
from prep.adapters.sharegpt import source_row
from prep.rows import RawRecord, Row, require_str
from prep.source import SourceConfig


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    turns = conversation(require_str(data, "query"), require_str(data, "response"))
    return source_row(source, data, index, data.get("type"), turns)
