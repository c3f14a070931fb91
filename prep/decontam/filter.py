"""Drop rows whose prompt or response contains a benchmark item: a shared long n-gram (13 words, as GPT-3
and NeMo Curator) or the item's whole question, after normalization. Hits are kept per item for
`prep decontam-report`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prep.decontam.references import BenchmarkConfig
from prep.rows import Row
from prep.step import CONTEXT, Context, RowFilter, Verdict

if TYPE_CHECKING:
    from prep.decontam.index import Hit

ROWS_LISTED_PER_ITEM = 5


class DecontamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ngram: int = Field(13, ge=4, description="GPT-3 and NeMo Curator use 13-grams")
    min_question_words: int = Field(4, ge=1, description="shorter questions are too generic to match exactly")
    benchmarks: list[BenchmarkConfig] = Field(default_factory=list, validate_default=True)

    @field_validator("benchmarks")
    @classmethod
    def _named(cls, benchmarks: list[BenchmarkConfig]) -> list[BenchmarkConfig]:
        if not benchmarks:
            raise ValueError("decontam.benchmarks is empty: say where MMLU/HellaSwag come from")
        return benchmarks


class Decontam(RowFilter):
    """`check` has no side effects (it runs in the worker processes) and puts the item it found in the verdict;
    `book` counts that item for the manifest in the main process."""

    name = "decontam"
    Config = DecontamConfig
    libraries = ("datasets",)  # hub benchmarks

    def __init__(self, config: DecontamConfig, context: Context = CONTEXT) -> None:
        from prep.decontam.index import BenchmarkIndex
        from prep.decontam.references import load_items

        self.n = config.ngram
        self.index = BenchmarkIndex(config.ngram, config.min_question_words)
        self.read: dict[str, dict[str, Any]] = {}
        for i, bench in enumerate(config.benchmarks):
            items, self.read[f"decontam.benchmarks[{i}] ({bench.name})"] = load_items(bench)
            self.index.add(bench.name, items, context.progress)
        self.index.freeze()
        self.hits: dict[int, list[str]] = defaultdict(list)
        self.dropped: Counter[str] = Counter()
        self.how: Counter[str] = Counter()

    def inputs(self) -> dict[str, dict[str, Any]]:
        return self.read

    def check(self, row: Row) -> Verdict[Hit] | None:
        hit = self.index.find(row)
        if hit is None:
            return None
        bench = self.index.benchmarks[hit.item]
        return Verdict(f"decontam_{bench}", f"{bench} {self.index.items[hit.item].key} by {hit.how}", hit)

    def book(self, row: Row, verdict: Verdict[Hit]) -> None:
        hit = verdict.found
        assert hit is not None, f"{row.id}: a decontam verdict without its hit"
        self.dropped[self.index.benchmarks[hit.item]] += 1
        self.how[hit.how] += 1
        self.hits[hit.item].append(row.id)

    def report(self) -> dict[str, Any]:
        benchmarks = self.index.benchmarks
        per_bench: dict[str, dict[str, Any]] = {b: {} for b in dict.fromkeys(benchmarks)}
        for owner, rows in sorted(self.hits.items()):
            item = self.index.items[owner]
            per_bench[benchmarks[owner]][item.key] = {
                "question": item.question[:200],
                "rows": len(rows),
                "row_ids": rows[:ROWS_LISTED_PER_ITEM],
            }
        return {
            "ngram": self.n,
            "items": dict(Counter(benchmarks)),
            "rows_dropped": {b: self.dropped[b] for b in per_bench},
            "matched_by": dict(self.how),
            "hits": per_bench,
        }
