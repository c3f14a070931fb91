"""meta-math/MetaMathQA: `query`, `response`, `type` (how the question was bootstrapped: GSM_Rephrased,
MATH_SV, ...; the row's subsource) and `original_question`."""

from __future__ import annotations

from prep.adapters.alpaca import conversation
from prep.adapters.sharegpt import original_id
from prep.config import SourceConfig
from prep.rows import RawRecord, Row, require_str


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    kind = data.get("type")
    return Row(
        id=f"{source.name}/{original_id(data, index)}",
        source=source.name,
        subsource=kind if isinstance(kind, str) and kind else None,
        teacher=source.teacher,
        conversations=conversation(require_str(data, "query"), require_str(data, "response")),
    )
