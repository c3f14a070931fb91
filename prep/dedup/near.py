"""Near duplicates: MinHash LSH over the prompt's shingles, across all sources.

Signatures come from rensa (Rust MinHash, computed a batch of rows at a time, in the worker processes); only the band hashes are kept
(14 x 8 bytes a row at the default threshold 0.8 and 128 permutations), never texts or signatures,
so 4.5M rows take about 500 MB. Rows sharing a band are candidates; each candidate pair is then checked by
its true shingle Jaccard, re-reading the two prompts from the spill, so LSH false positives never drop a
row (precision 1 against brute force; recall is LSH's)."""

from __future__ import annotations

import os
from typing import Any, Literal, NamedTuple

# The build's parallelism is its worker processes, forked from the main process. rensa computes digests on a
# rayon thread pool; once that pool has started in a process, a child forked from it waits forever on its
# first digest (the pool's threads are not forked). One rayon thread makes rensa compute inline: no pool.
# Set, not defaulted: any other value brings the hang back.
os.environ["RAYON_NUM_THREADS"] = "1"

import numpy as np
import rensa
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from prep.dedup.keep import KeepRank, components, duplicate_details, keep_best
from prep.rows import Row
from prep.spill import Spill
from prep.step import CONTEXT, Context, CorpusStep, Drop
from prep.text import prompt_text, words

_EMPTY = np.zeros(1, dtype=np.uint64)  # the one shingle of an empty prompt


class Found(NamedTuple):
    """The near duplicates `find` verified: each row to drop with the row its group keeps, and the verified
    pairs (with their Jaccard) that joined them."""

    dropped: np.ndarray
    kept: np.ndarray
    pairs: np.ndarray
    similarity: np.ndarray
    candidates: int  # candidate pairs checked


class NearDedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.8, gt=0, lt=1, description="Jaccard similarity of the prompts' shingle sets")
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1, description="words (or characters) per shingle")
    num_perm: int = Field(128, ge=16, le=512)


class Shingler:
    def __init__(self, config: NearDedupConfig) -> None:
        self.kind = config.shingle
        self.n = config.ngram

    def __call__(self, row: Row) -> np.ndarray:
        """Stable 64-bit hashes of the prompt's shingles; a prompt shorter than one shingle is one shingle."""
        from prep.hashing import ngram_hashes, prompt_words  # numba: loaded by a build, not to check a config

        if self.kind == "char":
            joined = " ".join(words(prompt_text(row)))
            chars = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            hashes = ngram_hashes(chars.astype(np.uint64), min(self.n, len(chars)))
        else:
            tokens = prompt_words(row)[0]
            hashes = ngram_hashes(tokens, min(self.n, len(tokens)))
        return hashes if len(hashes) else _EMPTY


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.unique(a), np.unique(b)
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class NearDedup(CorpusStep):
    name = "near_dedup"
    Config = NearDedupConfig
    libraries = ("rensa", "datasketch", "scipy")

    def __init__(self, config: NearDedupConfig, context: Context = CONTEXT) -> None:
        self.threshold = config.threshold
        self.num_perm = config.num_perm
        self.seed = context.seed
        from datasketch.lsh import _optimal_param  # scipy and pandas: loaded by a build, not to check a config

        # false negatives weighted 9:1 over false positives: every candidate is verified exactly, so LSH only
        # has to miss little (14 bands of 9 at 0.8; the balanced 9 x 13 missed 15% of the planted pairs)
        self.bands, self.rows_per_band = _optimal_param(config.threshold, config.num_perm, 0.1, 0.9)
        self.shingle = Shingler(config)
        self.progress = context.progress
        self.explain = context.explain
        self.rank = KeepRank()
        self._band_hashes: list[np.ndarray] = []
        self.stats: dict[str, int] = {}

    def featurize(self, rows: list[Row]) -> np.ndarray:
        """The rows' LSH band hashes (rows x bands)."""
        if not rows:
            return np.empty((0, self.bands), np.uint64)
        shingles = [self.shingle(row) for row in rows]
        offsets = np.zeros(len(shingles) + 1, dtype=np.uint64)
        np.cumsum([len(s) for s in shingles], out=offsets[1:])
        digests = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            np.concatenate(shingles), offsets, self.num_perm, self.seed
        )
        sig = np.asarray(digests.to_rows(), dtype=np.uint64)[:, : self.bands * self.rows_per_band]
        return band_hashes(sig, self.bands, self.rows_per_band)

    def observe(self, rows: list[Row], bands: np.ndarray) -> None:
        self._band_hashes.append(bands)
        self.rank.observe(rows)

    def candidate_pairs(self, alive: np.ndarray) -> np.ndarray:
        """(row, first row of its bucket) for every alive row sharing a band bucket, deduplicated."""
        bands = np.concatenate(self._band_hashes) if self._band_hashes else np.empty((0, self.bands), np.uint64)
        self._band_hashes = [bands]  # one copy, not the pieces and the whole
        live = np.flatnonzero(alive[: len(bands)])
        pairs = []
        for j in range(self.bands):
            h = bands[live, j]
            order = np.argsort(h, kind="stable")
            hs, rows = h[order], live[order]
            starts = np.ones(len(hs), dtype=bool)
            starts[1:] = hs[1:] != hs[:-1]
            head = rows[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
            member = ~starts
            pairs.append(np.stack([rows[member], head[member]], axis=1))
        pairs_all = np.concatenate(pairs) if pairs else np.empty((0, 2), np.int64)
        return np.unique(pairs_all, axis=0)

    def shingles_at(self, spill: Spill, index: int) -> np.ndarray:
        return self.shingle(spill.row(index))

    def find(self, alive: np.ndarray, spill: Spill) -> Found:
        """Verify the candidate pairs by their true Jaccard, join the verified ones into groups, keep the best
        row of each group."""
        pairs = self.candidate_pairs(alive)
        verified, similarities = [], []
        cached: tuple[int, np.ndarray] | None = None
        for a, b in tqdm(
            pairs[np.argsort(pairs[:, 1], kind="stable")],
            desc="near-dup verify",
            unit="pair",
            disable=not self.progress,
        ):
            if cached is None or cached[0] != b:
                cached = (b, self.shingles_at(spill, int(b)))
            similarity = jaccard(self.shingles_at(spill, int(a)), cached[1])
            if similarity >= self.threshold:
                verified.append((a, b))
                similarities.append(similarity)
        n = len(alive)
        edges = np.array(verified, dtype=np.int64).reshape(-1, 2)
        groups = components(edges, n)
        dropped, kept = keep_best(groups, self.rank, alive)
        return Found(dropped, kept, edges, np.array(similarities), len(pairs))

    def run(self, alive: np.ndarray, spill: Spill) -> list[Drop]:
        found = self.find(alive, spill)
        self.stats = {
            "bands": self.bands,
            "rows_per_band": self.rows_per_band,
            "candidate_pairs": found.candidates,
            "verified_pairs": len(found.pairs),
            "dropped": len(found.dropped),
        }
        if not self.explain:
            return [(int(i), "near_duplicate") for i in found.dropped]
        to_kept = np.array(
            [
                jaccard(self.shingles_at(spill, int(d)), self.shingles_at(spill, int(k)))
                for d, k in zip(found.dropped, found.kept, strict=True)
            ]
        )
        details = duplicate_details(
            spill, found.dropped, found.kept, to_kept, found.pairs, found.similarity, "jaccard", self.threshold
        )
        return [(int(i), "near_duplicate", d) for i, d in zip(found.dropped, details, strict=True)]

    def report(self) -> dict[str, Any]:
        return {"threshold": self.threshold, **self.stats}


_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_hashes(sig: np.ndarray, bands: int, rows_per_band: int) -> np.ndarray:
    """One 64-bit hash per band of each signature (rows x bands), vectorized."""
    out = np.zeros((len(sig), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(rows_per_band):
            out = out * _MIX + sig[:, k::rows_per_band][:, :bands] + np.uint64(k + 1)
    return out
