"""The benchmark items as compact sorted hash indexes: every long n-gram of an item's texts, and the whole
question (or a text too short for one n-gram), each owned by the first item that has it. A row is found in it
by its prompt, then its response; the decontam filter builds it (and so loads numba) when a build makes it."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from prep.decontam.references import Item
from prep.hashing import MATCH_MIN_LEN, find_in_index, ngram_hashes, prompt_words, sequence_hash, word_hashes
from prep.rows import Row
from prep.text import response_text

BITMAP_BITS = 1 << 27


class Hit(NamedTuple):
    """A benchmark item a row contains: its position in the index's `items`, and "question" or "ngram"."""

    item: int
    how: str


class BenchmarkIndex:
    def __init__(self, ngram: int, min_question_words: int) -> None:
        self.n = ngram
        self.min_question_words = min_question_words
        self.items: list[Item] = []
        self.benchmarks: list[str] = []  # per item, the benchmark it comes from
        self._grams: list[np.ndarray] = []
        self._owners: list[np.ndarray] = []
        self._questions: list[int] = []
        self._question_owners: list[int] = []

    def add(self, benchmark: str, items: list[Item], progress: bool) -> None:
        for item in tqdm(items, desc=f"index {benchmark}", unit="item", disable=not progress):
            owner = len(self.items)
            self.items.append(item)
            self.benchmarks.append(benchmark)
            q = word_hashes(item.question, MATCH_MIN_LEN)[0]
            if len(q) >= self.min_question_words:
                self._whole(q, owner)
            for text in item.texts:
                hashes = word_hashes(text, MATCH_MIN_LEN)[0]
                if self.min_question_words <= len(hashes) < self.n:  # too short for a gram: match it whole
                    self._whole(hashes, owner)
                g = ngram_hashes(hashes, self.n)
                self._grams.append(g)
                self._owners.append(np.full(len(g), owner, dtype=np.int32))

    def _whole(self, hashes: np.ndarray, owner: int) -> None:
        self._questions.append(sequence_hash(hashes))
        self._question_owners.append(owner)

    def freeze(self) -> BenchmarkIndex:
        """Sorted unique hashes with the first item owning each, searched with searchsorted. A 16 MB bitmap over
        the grams' low bits answers most lookups from cache; only its few hits (about 1.5% false ones at 2M
        grams) pay for a binary search in the index."""
        self.grams, self.owners = _index(self._grams, self._owners)
        self.questions, self.question_owners = _index(
            [np.array(self._questions, dtype=np.uint64)], [np.array(self._question_owners, dtype=np.int32)]
        )
        self.bitmap = np.zeros(BITMAP_BITS // 8, dtype=np.uint8)
        low = self.grams & np.uint64(BITMAP_BITS - 1)
        np.bitwise_or.at(self.bitmap, low >> np.uint64(3), np.left_shift(1, low & np.uint64(7)).astype(np.uint8))
        return self

    def _find(self, hashes: np.ndarray, lines: np.ndarray) -> Hit | None:
        kind, pos = find_in_index(hashes, lines, self.n, self.questions, self.grams, self.bitmap)
        if kind == 1:
            return Hit(int(self.question_owners[pos]), "question")  # the whole text, or a line, is a question
        return Hit(int(self.owners[pos]), "ngram") if kind == 2 else None

    def find(self, row: Row) -> Hit | None:
        """The item the row contains and how it was found, or None."""
        _, hashes, lines = prompt_words(row)
        return self._find(hashes, lines) or self._find(*word_hashes(response_text(row), MATCH_MIN_LEN))


def _index(hashes: list[np.ndarray], owners: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    all_hashes = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    all_owners = np.concatenate(owners) if owners else np.empty(0, np.int32)
    unique, first = np.unique(all_hashes, return_index=True)
    return unique, all_owners[first]
