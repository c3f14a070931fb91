"""Tokens of a ShareGPT mixture counted the way Axolotl's `chat_template` strategy counts them.

Axolotl 0.19 (`prompt_strategies/chat_template.py`, roles_to_train [assistant], train_on_eos turn) renders the
whole conversation with the chat template, tokenizes the text without adding special tokens (the template
writes BOS/EOS itself), finds each assistant turn's characters by diffing the render against renders with two
placeholder contents, labels the tokens covering them, and labels the first EOS within 3 tokens after the turn.
`ChatTokens.count` does the same, so its figures equal what `axolotl preprocess` stores
(`tests/prep/test_tokens.py` compares them on the demo mixture). A file too big to count quickly is sampled per
source and extrapolated, with the standard error of the estimate.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[1] / "recipes" / "templates" / "llama2_chat.jinja"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
SENTINELS = ("[[dummy_message]]", "zzdummymessagezz")  # Axolotl's: disjoint first/last characters
EOS_WINDOW = 3  # Axolotl labels an EOS at most this many tokens after the turn's content
EXACT_ROWS = 50_000  # count every row up to this many; sample above
SAMPLE_ROWS = 10_000
BOUND_SE = 4.0  # the stated bound, in standard errors: skewed row lengths make small samples less than normal
# (on the demo mixture, 40 seeded samples of 400 rows gave errors up to 3.1 standard errors)


class TokenCountError(ValueError):
    """A row or tokenizer that cannot be counted; the message names the file, line and field."""


def _diff_span(full: str, dummy: str) -> tuple[int, int]:
    """Characters of `full` that differ from `dummy` (prefix scan, then a suffix scan bounded by it)."""
    limit = min(len(full), len(dummy))
    start = 0
    while start < limit and full[start] == dummy[start]:
        start += 1
    suffix = 0
    while suffix < limit - start and full[-1 - suffix] == dummy[-1 - suffix]:
        suffix += 1
    return start, len(full) - suffix


class ChatTokens:
    """(tokens, trainable tokens) of one conversation under a tokenizer and a Jinja chat template."""

    def __init__(self, tokenizer: Any, chat_template: str) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise TokenCountError(f"tokenizer {tokenizer.name_or_path!r} is not a fast tokenizer (no offsets)")
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.eos = tokenizer.eos_token_id

    @classmethod
    def load(
        cls, tokenizer: str, chat_template: Path | str | None = None, trust_remote_code: bool = False
    ) -> ChatTokens:
        """A hub id or local directory, and a template: a file, the Jinja text itself (what Axolotl's validated
        config holds), or None for the recipes' Llama-2-chat template."""
        if isinstance(chat_template, str) and ("{%" in chat_template or "{{" in chat_template):
            return cls(cls._tokenizer(tokenizer, trust_remote_code), chat_template)
        template = Path(chat_template or DEFAULT_TEMPLATE)
        tok = cls._tokenizer(tokenizer, trust_remote_code)
        try:
            text = template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TokenCountError(f"cannot read the chat template {template}: {e}") from e
        return cls(tok, text)

    @staticmethod
    def _tokenizer(tokenizer: str, trust_remote_code: bool) -> Any:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(tokenizer, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as e:
            raise TokenCountError(f"cannot load the tokenizer {tokenizer!r}: {str(e).splitlines()[0]}") from e
        return tok

    def _render(self, turns: list[dict[str, str]]) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                turns, tokenize=False, chat_template=self.chat_template, add_generation_prompt=False
            )
        )

    def count(self, conversations: list[Mapping[str, str]]) -> tuple[int, int]:
        """One ShareGPT conversation ([{from, value}, ...]) -> (tokens, trainable tokens)."""
        turns = [{"role": ROLES.get(m["from"], m["from"]), "content": m["value"]} for m in conversations]
        text = self._render(turns)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids: list[int] = enc["input_ids"]
        starts = [s for s, _ in enc["offset_mapping"]]
        ends = [e for _, e in enc["offset_mapping"]]
        labelled = [False] * len(ids)
        for i, turn in enumerate(turns):
            if turn["role"] != "assistant":
                continue
            spans = [
                _diff_span(text, self._render([*turns[:i], {"role": "assistant", "content": s}, *turns[i + 1 :]]))
                for s in SENTINELS
            ]
            lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
            first, last = -1, -1
            if hi > lo:
                first, last = bisect_right(ends, lo), bisect_left(starts, hi)
                if first >= len(ends) or last <= first:
                    first, last = -1, -1
            for k in range(max(first, 0), last):
                labelled[k] = True
            eos = next((k for k in range(last, len(ids)) if ids[k] == self.eos), -1)
            if eos != -1 and abs(eos - last) <= EOS_WINDOW:
                labelled[eos] = True
        return len(ids), sum(labelled)


@dataclass
class Tally:
    """Rows, tokens and trainable tokens of one source; `*_se` is the standard error when sampled."""

    rows: int = 0
    counted: int = 0
    tokens: float = 0.0
    trainable: float = 0.0
    tokens_se: float = 0.0
    trainable_se: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "tokens": round(self.tokens),
            "trainable_tokens": round(self.trainable),
        }
        if self.counted < self.rows:
            out |= {
                "counted_rows": self.counted,
                "tokens_bound": round(BOUND_SE * self.tokens_se),
                "trainable_tokens_bound": round(BOUND_SE * self.trainable_se),
            }
        return out


@dataclass
class MixtureTokens:
    """Per-source and total token counts of a ShareGPT JSONL, and the counted rows' (tokens, trainable)
    with the number of file rows each stands for (1 when every row was counted)."""

    sources: dict[str, Tally]
    lengths: list[tuple[int, int, float]] = field(default_factory=list)  # (tokens, trainable, weight)

    @property
    def total(self) -> Tally:
        t = Tally()
        for s in self.sources.values():
            t.rows += s.rows
            t.counted += s.counted
            t.tokens += s.tokens
            t.trainable += s.trainable
            t.tokens_se = math.hypot(t.tokens_se, s.tokens_se)
            t.trainable_se = math.hypot(t.trainable_se, s.trainable_se)
        return t

    @property
    def sampled(self) -> bool:
        return self.total.counted < self.total.rows

    def method(self) -> str:
        t = self.total
        if not self.sampled:
            return f"all {t.rows:,} rows counted"
        return (
            f"{t.counted:,} of {t.rows:,} rows sampled per source and extrapolated; "
            f"bounds are {BOUND_SE:g} standard errors"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method(),
            "sources": {name: s.to_json() for name, s in self.sources.items()},
            "total": self.total.to_json(),
        }


def _index(path: Path) -> dict[str, list[int]]:
    """Byte offsets of each source's rows (the `source` field; "-" where a row has none)."""
    by_source: dict[str, list[int]] = {}
    offset = 0
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):
            if line.strip():
                try:
                    source = orjson.loads(line).get("source") or "-"
                except (orjson.JSONDecodeError, AttributeError) as e:
                    raise TokenCountError(f"{path} line {line_no}: not a JSON object ({e})") from e
                by_source.setdefault(str(source), []).append(offset)
            offset += len(line)
    return by_source


def _conversations_at(path: Path, offsets: Iterable[int]) -> Iterator[Any]:
    with path.open("rb") as f:
        for offset in offsets:
            f.seek(offset)
            conv = orjson.loads(f.readline()).get("conversations")
            if not isinstance(conv, list):
                raise TokenCountError(f"{path} byte {offset}: field 'conversations' is not a list")
            yield conv


def jsonl_rows(path: Path) -> tuple[dict[str, list[int]], Callable[[list[int]], Iterator[Any]]]:
    """A ShareGPT JSONL (`conversations` of {from, value}) as `count_rows` takes it: its rows' byte offsets per
    source, and their reader."""
    return _index(path), lambda offsets: _conversations_at(path, offsets)


def count_rows(
    index: dict[str, list[int]],
    conversations: Callable[[list[int]], Iterable[Any]],
    counter: ChatTokens,
    *,
    exact_rows: int = EXACT_ROWS,
    sample: int = SAMPLE_ROWS,
    seed: int = 0,
    progress: bool = False,
) -> MixtureTokens:
    """Count rows given per source (`index`: source -> its rows' keys, a byte offset or a spill position, in
    output order; sources in order of first appearance) and read by `conversations(keys)`; above `exact_rows` rows, a seeded random sample of about
    `sample` rows, split over the sources in proportion (at least 100 each), stands for the rest."""
    from tqdm import tqdm

    total = sum(len(v) for v in index.values())
    rng = random.Random(seed)
    picks: dict[str, list[int]] = {}
    for name, keys in index.items():
        if total <= exact_rows:
            picks[name] = keys
        else:
            n = min(len(keys), max(100, round(sample * len(keys) / total)))
            picks[name] = sorted(rng.sample(keys, n))
    out = MixtureTokens({})
    bar = tqdm(total=sum(map(len, picks.values())), desc="count tokens", unit="row", disable=not progress)
    for name, keys in picks.items():
        pairs = []
        for conv in conversations(keys):
            pairs.append(counter.count(conv))
            bar.update()
        n, rows = len(pairs), len(index[name])
        weight = rows / n
        tally = Tally(rows=rows, counted=n)
        for k, attr in enumerate(("tokens", "trainable")):
            xs = [p[k] for p in pairs]
            mean = sum(xs) / n
            setattr(tally, attr, mean * rows)
            if n < rows and n > 1:
                var = sum((x - mean) ** 2 for x in xs) / (n - 1)
                setattr(tally, f"{attr}_se", rows * math.sqrt(var / n * (rows - n) / (rows - 1)))
        out.sources[name] = tally
        out.lengths.extend((t, tr, weight) for t, tr in pairs)
    bar.close()
    return out
