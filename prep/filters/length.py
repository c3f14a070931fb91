"""Rows outside the length bounds: answers too short to teach anything, rows longer than the recipes'
sequence_len (training would cut them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prep.lengths import TokenCounter
from prep.rows import Row
from prep.step import CONTEXT, Context, RowFilter, Verdict


class LengthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_response_chars: int = Field(1, ge=0)
    max_total_chars: int = Field(24_000, ge=1, description="used when no tokenizer is set (about 6k tokens)")
    min_response_tokens: int = Field(1, ge=0)
    max_total_tokens: int = Field(4096, ge=1, description="the recipes' sequence_len; longer rows would be truncated")


class Length(RowFilter):
    """Bounds in tokens when `curation.tokenizer` is set, else in characters."""

    name = "length"
    Config = LengthConfig

    def __init__(self, config: LengthConfig, context: Context = CONTEXT) -> None:
        self.counter = context.counter or TokenCounter(None)
        tokens = self.counter.unit == "tokens"
        self.min_response = config.min_response_tokens if tokens else config.min_response_chars
        self.max_total = config.max_total_tokens if tokens else config.max_total_chars

    def check(self, row: Row) -> Verdict | None:
        prompt, answer = self.counter.prompt_response(row)
        if answer < self.min_response:
            return Verdict("too_short")
        return Verdict("too_long") if prompt + answer > self.max_total else None
