"""The one row shape every adapter produces and every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ROLES = ("system", "human", "gpt")


class MalformedRow(ValueError):
    """A source record that cannot become a row; `reason` is the manifest key it is counted under."""

    def __init__(self, reason: str, field: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class RawRecord:
    """One record as read from a file: `data` is None when the record itself did not parse."""

    file: str
    row: int  # 1-based position in the file (the line number for JSONL)
    data: dict[str, Any] | None
    error: str | None = None


@dataclass
class Row:
    id: str
    source: str
    subsource: str | None
    teacher: str | None  # completion model ("gpt-4", "gpt-3.5") when the source records it
    conversations: list[dict[str, str]] = field(default_factory=list)
    # what several steps derive from the row (its prompt text, word hashes), computed once; never written out
    memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "subsource": self.subsource,
            "teacher": self.teacher,
            "conversations": self.conversations,
        }

    def turns(self, role: str) -> list[str]:
        return [t["value"] for t in self.conversations if t["from"] == role]


def require_str(data: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    """Fetch a string field or raise MalformedRow naming it."""
    if key not in data or data[key] is None:
        raise MalformedRow("missing_field", key, f"field {key!r} is missing")
    value = data[key]
    if not isinstance(value, str):
        raise MalformedRow("not_a_string", key, f"field {key!r} is {type(value).__name__}, not a string")
    if not allow_empty and not value.strip():
        raise MalformedRow("empty_field", key, f"field {key!r} is empty")
    return value


def check_conversation(turns: list[dict[str, str]], *, field_name: str = "conversations") -> None:
    """A trainable conversation: optional leading system turn, then human/gpt alternating, ending on gpt."""
    if not turns:
        raise MalformedRow("empty_conversation", field_name, f"{field_name!r} has no turns")
    body = turns[1:] if turns[0]["from"] == "system" else turns
    if not body:
        raise MalformedRow("empty_conversation", field_name, f"{field_name!r} has only a system turn")
    for i, turn in enumerate(body):
        expected = "human" if i % 2 == 0 else "gpt"
        if turn["from"] != expected:
            raise MalformedRow(
                "roles_not_alternating",
                f"{field_name}[{i + len(turns) - len(body)}].from",
                f"turn {i + len(turns) - len(body)} is {turn['from']!r}, expected {expected!r}",
            )
    if body[-1]["from"] != "gpt":
        raise MalformedRow("no_final_answer", field_name, f"{field_name!r} does not end with a gpt turn")
