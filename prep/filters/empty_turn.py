"""Rows with an empty human or gpt turn: nothing to learn, or an answer to nothing."""

from __future__ import annotations

from prep.rows import Row
from prep.step import RowFilter, Verdict


class EmptyTurn(RowFilter):
    name = "empty_turn"

    def check(self, row: Row) -> Verdict | None:
        body = [t for t in row.conversations if t["from"] != "system"]
        return Verdict("empty_turn") if any(not t["value"].strip() for t in body) else None
