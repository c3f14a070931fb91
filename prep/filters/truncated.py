"""Answers cut off mid-sentence."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from prep.rows import Row
from prep.step import CONTEXT, Context, RowFilter, Verdict

_SENTENCE_END = (*".!?\"')]}>`*_|”’…:;", "```")  # noqa: RUF001 (closing quotes are meant)
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d+[.)]|[a-zA-Z][.)])\s")


class TruncatedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_words: int = Field(
        10, ge=1, description="a last line this long can be judged cut off; shorter ones are labels like 'Answer: B'"
    )


class Truncated(RowFilter):
    """The final answer stops mid-sentence: its last line is a long run of words without closing punctuation.
    Short last lines ("Answer: B", "Output: Yes", a signature, a code line) are not judged, nor list items,
    nor answers under twice that length (titles, labels)."""

    name = "truncated"
    Config = TruncatedConfig

    def __init__(self, config: TruncatedConfig, context: Context = CONTEXT) -> None:
        self.min_words = config.min_words

    def check(self, row: Row) -> Verdict | None:
        answer = row.conversations[-1]["value"].rstrip()
        last_line = answer.rsplit("\n", 1)[-1]
        if (
            answer.endswith(_SENTENCE_END)
            or len(last_line.split(None, self.min_words)) < self.min_words
            or len(answer.split(None, 2 * self.min_words)) < 2 * self.min_words
            or _LIST_ITEM.match(last_line)
            or answer.count("```") % 2 == 1
            or last_line[-1:].isdigit()
        ):
            return None
        return Verdict("truncated")
