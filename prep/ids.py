"""Row ids made unique across a build: the second row read with id X becomes `X#2`, the third `X#3`, in input
order (so whatever the number of workers), each rename counted per source. Two different rows under one id
(ShareGPT dumps split conversations and keep the id; a source's own mistakes) would otherwise both reach the
output with it; renaming keeps both rows and still finds each in its source.

The ids are not kept, only a 64-bit hash of each: 8 bytes a row in a sorted array, plus a set of the latest
(a set of every id took ~300 MB at 4.5M rows). Two distinct ids share a hash with a chance of about 1 in a
million at 4.5M rows; the second would then be renamed needlessly, the same way in every run."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from prep.rows import Row

RECENT = 1 << 16  # hashes held in a set before they merge into the sorted array


def id_hash(row_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(row_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class UniqueIds:
    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._next: dict[str, int] = {}  # for an id seen repeated: the next suffix to try
        self.renamed: Counter[str] = Counter()

    def _seen(self, key: int) -> bool:
        if key in self._recent:
            return True
        at = int(np.searchsorted(self._sorted, np.uint64(key)))
        return at < len(self._sorted) and int(self._sorted[at]) == key

    def _add(self, key: int) -> None:
        self._recent.add(key)
        if len(self._recent) >= RECENT:
            merged = np.concatenate([self._sorted, np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))])
            merged.sort()
            self._sorted, self._recent = merged, set()

    def assign(self, rows: list[Row]) -> None:
        """Give each row of the batch (in input order) an id no earlier row of the build has."""
        keys = [id_hash(row.id) for row in rows]
        if len(self._sorted):
            at = np.searchsorted(self._sorted, np.array(keys, dtype=np.uint64))
            old = self._sorted[np.minimum(at, len(self._sorted) - 1)] == np.array(keys, dtype=np.uint64)
        else:
            old = np.zeros(len(rows), dtype=bool)
        for row, key, seen in zip(rows, keys, old.tolist(), strict=True):
            if not seen and key not in self._recent:
                self._add(key)
                continue
            n = self._next.get(row.id, 2)
            while self._seen(key := id_hash(f"{row.id}#{n}")):
                n += 1
            self._next[row.id] = n + 1
            self._add(key)
            self.renamed[row.source] += 1
            row.id = f"{row.id}#{n}"
