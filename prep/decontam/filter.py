"""Drop rows whose prompt or response contains a benchmark item: a shared long n-gram (13 words, as GPT-3
and NeMo Curator) or the item's whole question, after normalization. Hits are kept per item for
`prep decontam-report`."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from prep.curation import CONTEXT, Context, RowFilter, Verdict
from prep.decontam.references import BenchmarkConfig, Item, load_items
from prep.hashing import MATCH_MIN_LEN, find_in_index, ngram_hashes, prompt_words, sequence_hash, word_hashes
from prep.rows import Row
from prep.text import response_text

ROWS_LISTED_PER_ITEM = 5
BITMAP_BITS = 1 << 27


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
    """`check` has no side effects (it runs in the worker processes); `book` counts a drop's item for the
    manifest in the main process, finding it again (drops are rare)."""

    name = "decontam"
    Config = DecontamConfig
    libraries = ("datasets",)  # hub benchmarks

    def __init__(self, config: DecontamConfig, context: Context = CONTEXT) -> None:
        progress = context.progress
        self.n = config.ngram
        self.benchmarks: list[str] = []
        self.items: list[Item] = []
        grams, owners, questions, question_owners = [], [], [], []

        def whole(hashes: np.ndarray, owner: int) -> None:
            questions.append(sequence_hash(hashes))
            question_owners.append(owner)

        self.read: dict[str, dict[str, Any]] = {}
        for i, bench in enumerate(config.benchmarks):
            items, self.read[f"decontam.benchmarks[{i}] ({bench.name})"] = load_items(bench)
            for item in tqdm(items, desc=f"index {bench.name}", unit="item", disable=not progress):
                owner = len(self.items)
                self.items.append(item)
                self.benchmarks.append(bench.name)
                q = word_hashes(item.question, MATCH_MIN_LEN)[0]
                if len(q) >= config.min_question_words:
                    whole(q, owner)
                for text in item.texts:
                    hashes = word_hashes(text, MATCH_MIN_LEN)[0]
                    if config.min_question_words <= len(hashes) < self.n:  # too short for a gram: match it whole
                        whole(hashes, owner)
                    g = ngram_hashes(hashes, self.n)
                    grams.append(g)
                    owners.append(np.full(len(g), owner, dtype=np.int32))
        # sorted unique hashes with the first item owning each: compact indexes searched with searchsorted
        self.grams, self.owners = _index(grams, owners)
        self.questions, self.question_owners = _index(
            [np.array(questions, dtype=np.uint64)], [np.array(question_owners, dtype=np.int32)]
        )
        # A 16 MB bitmap over the grams' low bits answers most lookups from cache; only its few hits (about
        # 1.5% false ones at 2M grams) pay for a binary search in the index.
        self.bitmap = np.zeros(BITMAP_BITS // 8, dtype=np.uint8)
        low = self.grams & np.uint64(BITMAP_BITS - 1)
        np.bitwise_or.at(self.bitmap, low >> np.uint64(3), np.left_shift(1, low & np.uint64(7)).astype(np.uint8))
        self.hits: dict[int, list[str]] = defaultdict(list)
        self.dropped: Counter[str] = Counter()
        self.how: Counter[str] = Counter()

    def inputs(self) -> dict[str, dict[str, Any]]:
        return self.read

    def _find(self, hashes: np.ndarray, lines: np.ndarray) -> tuple[int, str] | None:
        kind, pos = find_in_index(hashes, lines, self.n, self.questions, self.grams, self.bitmap)
        if kind == 1:
            return int(self.question_owners[pos]), "question"  # the whole text, or a line, is a question
        return (int(self.owners[pos]), "ngram") if kind == 2 else None

    def find(self, row: Row) -> tuple[int, str] | None:
        _, hashes, lines = prompt_words(row)
        return self._find(hashes, lines) or self._find(*word_hashes(response_text(row), MATCH_MIN_LEN))

    def check(self, row: Row) -> Verdict | None:
        hit = self.find(row)
        if hit is None:
            return None
        owner, how = hit
        bench = self.benchmarks[owner]
        return Verdict(self.name, f"decontam_{bench}", f"{bench} {self.items[owner].key} by {how}")

    def book(self, row: Row, verdict: Verdict) -> None:
        hit = self.find(row)
        assert hit is not None, f"{row.id} was dropped by decontam but matches no item"
        owner, how = hit
        self.dropped[self.benchmarks[owner]] += 1
        self.how[how] += 1
        self.hits[owner].append(row.id)

    def report(self) -> dict[str, Any]:
        per_bench: dict[str, dict[str, Any]] = {b: {} for b in dict.fromkeys(self.benchmarks)}
        for owner, rows in sorted(self.hits.items()):
            item = self.items[owner]
            per_bench[self.benchmarks[owner]][item.key] = {
                "question": item.question[:200],
                "rows": len(rows),
                "row_ids": rows[:ROWS_LISTED_PER_ITEM],
            }
        return {
            "ngram": self.n,
            "items": dict(Counter(self.benchmarks)),
            "rows_dropped": {b: self.dropped[b] for b in per_bench},
            "matched_by": dict(self.how),
            "hits": per_bench,
        }


def _index(hashes: list[np.ndarray], owners: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    all_hashes = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    all_owners = np.concatenate(owners) if owners else np.empty(0, np.int32)
    unique, first = np.unique(all_hashes, return_index=True)
    return unique, all_owners[first]
