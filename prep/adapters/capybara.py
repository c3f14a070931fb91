"""LDJnr/Capybara: `conversation` is a list of {input, output} exchanges (multi-turn, Amplify-Instruct), with the
seed's origin in `source`."""

from __future__ import annotations

from prep.adapters.sharegpt import source_row
from prep.rows import MalformedRow, RawRecord, Row, check_conversation, require_str
from prep.source import SourceConfig


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    exchanges = data.get("conversation")
    if not isinstance(exchanges, list):
        raise MalformedRow("missing_field", "conversation", "field 'conversation' is missing or not a list")
    turns = []
    for i, exchange in enumerate(exchanges):
        if not isinstance(exchange, dict):
            raise MalformedRow("not_an_object", f"conversation[{i}]", f"exchange {i} is not an object")
        turns += [
            {"from": "human", "value": require_str(exchange, "input")},
            {"from": "gpt", "value": require_str(exchange, "output")},
        ]
    check_conversation(turns, field_name="conversation")
    return source_row(source, data, index, data.get("source"), turns)
