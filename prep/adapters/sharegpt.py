"""Generic ShareGPT rows: a list of {from, value} turns (OpenAI-style {role, content} is accepted too)."""

from __future__ import annotations

from typing import Any

from prep.rows import MalformedRow, RawRecord, Row, check_conversation
from prep.source import SourceConfig

ROLE_ALIASES = {
    "system": "system",
    "human": "human",
    "user": "human",
    "gpt": "gpt",
    "assistant": "gpt",
    "chatgpt": "gpt",
}
ID_FIELDS = ("id", "idx")


def parse_turns(data: dict[str, Any], field: str, aliases: dict[str, str]) -> list[dict[str, str]]:
    turns = data.get(field)
    if turns is None:
        raise MalformedRow("missing_field", field, f"field {field!r} is missing")
    if not isinstance(turns, list):
        raise MalformedRow("not_a_list", field, f"field {field!r} is {type(turns).__name__}, not a list")
    out = []
    for i, turn in enumerate(turns):
        where = f"{field}[{i}]"
        if not isinstance(turn, dict):
            raise MalformedRow("not_an_object", where, f"turn {i} is {type(turn).__name__}, not an object")
        role = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        if not isinstance(role, str):
            raise MalformedRow("missing_field", f"{where}.from", f"turn {i} has no string 'from'")
        if role.lower() not in aliases:
            raise MalformedRow("unknown_role", f"{where}.from", f"turn {i} has unknown role {role!r}")
        if not isinstance(value, str):
            raise MalformedRow("not_a_string", f"{where}.value", f"turn {i} has no string 'value'")
        out.append({"from": aliases[role.lower()], "value": value})
    check_conversation(out, field_name=field)
    return out


def original_id(data: dict[str, Any], index: int) -> str:
    """The source's own id when it has one, else the row's position in the source."""
    for key in ID_FIELDS:
        if isinstance(data.get(key), (str, int)):
            return str(data[key])
    return str(index)


def source_row(source: SourceConfig, data: dict[str, Any], index: int, subsource: Any, turns: list) -> Row:
    """A row of `source` with its original id; `subsource` kept when it is a non-empty string."""
    return Row(
        id=f"{source.name}/{original_id(data, index)}",
        source=source.name,
        subsource=subsource if isinstance(subsource, str) and subsource else None,
        teacher=source.teacher,
        conversations=turns,
    )


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    field = "conversations" if "conversations" in data or "messages" not in data else "messages"
    return Row(
        id=f"{source.name}/{original_id(data, index)}",
        source=source.name,
        subsource=None,
        teacher=source.teacher,
        conversations=parse_turns(data, field, ROLE_ALIASES),
    )
