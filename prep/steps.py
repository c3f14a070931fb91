"""The curation steps, by the name `curation.steps` and the config sections use.

A new step is a module with its class (a `RowFilter`, a `CorpusStep` or a `Stats` from prep/step.py, with its
`name` and its pydantic `Config` beside it) plus one line in ROW_FILTERS, CORPUS_STEPS or STATS below. Row
filters run first, in the listed order, on every row; corpus steps then run in the listed order on what is
left; the statistics that apply last, on the rows kept (they drop nothing and are not listed in the config). A step module
imports its libraries where it uses them, so that checking a config (which imports every step for its
`Config`) loads none of them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from prep.decontam.filter import Decontam
from prep.dedup.exact import ExactDedup
from prep.dedup.near import NearDedup
from prep.dedup.semantic import SemanticDedup
from prep.errors import validation_message
from prep.filters.boilerplate import AiIdentity, Refusal
from prep.filters.empty_turn import EmptyTurn
from prep.filters.language import Language
from prep.filters.length import Length
from prep.filters.truncated import Truncated
from prep.mixture import Mixture
from prep.select.step import Select
from prep.stats.lengths import LengthStats
from prep.stats.tokens import TokenStats
from prep.step import CorpusStep, RowFilter, Stats, Step

ROW_FILTERS: dict[str, type[RowFilter]] = {
    "empty_turn": EmptyTurn,
    "refusal": Refusal,
    "ai_identity": AiIdentity,
    "truncated": Truncated,
    "length": Length,
    "language": Language,
    "decontam": Decontam,
}
CORPUS_STEPS: dict[str, type[CorpusStep]] = {
    "exact_dedup": ExactDedup,
    "near_dedup": NearDedup,
    "semantic_dedup": SemanticDedup,
    "select": Select,
    "mixture": Mixture,
}
STATS: dict[str, type[Stats]] = {
    "lengths": LengthStats,
    "tokens": TokenStats,
}
ALIASES = {"quality": ["empty_turn", "refusal", "ai_identity", "truncated", "length"]}
LAST = "mixture"  # samples what the other steps left, so nothing may run after it
DEDUPS = ("exact_dedup", "near_dedup", "semantic_dedup")  # before select, which fills a budget from their rows

STEPS: dict[str, type[Step]] = {**ROW_FILTERS, **CORPUS_STEPS}


def check_steps(steps: list[str]) -> list[str]:
    """`steps` with aliases expanded, or a ValueError saying what is wrong with them."""
    if unknown := [s for s in steps if s not in STEPS and s not in ALIASES]:
        raise ValueError(f"unknown steps {unknown}; known: {[*ALIASES, *STEPS]}")
    expanded = [name for s in steps for name in ALIASES.get(s, [s])]
    if len(set(expanded)) != len(expanded):
        raise ValueError(f"a step is listed twice: {expanded} (quality stands for {ALIASES['quality']})")
    kinds = [s in CORPUS_STEPS for s in expanded]
    if kinds != sorted(kinds):
        raise ValueError(f"row steps {list(ROW_FILTERS)} must come before corpus steps {list(CORPUS_STEPS)}: {steps}")
    if "select" in expanded and any(expanded.index(d) > expanded.index("select") for d in DEDUPS if d in expanded):
        raise ValueError("select must come after the dedup steps: it fills its budget from the rows they leave")
    if LAST in expanded and expanded[-1] != LAST:
        raise ValueError(f"{LAST} must be the last step: it samples what the other steps left")
    return expanded


def section_config(name: str, section: Any) -> BaseModel:
    """The `curation.<name>` section validated by its step's `Config`; a ValueError naming the key if it is
    not a step, the old `quality:` section included."""
    if name in ALIASES:
        raise ValueError(
            f"curation.{name}: `{name}` stands for the steps {ALIASES[name]}, which have their own sections "
            "(truncated: {min_words}, length: {min_response_chars, max_total_chars, min_response_tokens, "
            "max_total_tokens}); to turn one off, list the others in `steps` instead of quality"
        )
    if name not in STEPS:
        raise ValueError(
            f"unknown curation key {name!r}: neither a step nor steps/tokenizer/warn_source_share; steps: {list(STEPS)}"
        )
    try:
        return STEPS[name].Config.model_validate({} if section is None else section)
    except ValidationError as e:
        raise ValueError(validation_message(e, prefix=f"curation.{name}.")) from e
