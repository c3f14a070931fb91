"""Prompt vectors for clustering.

`hashing` (the CPU default, no model): in the worker processes each prompt becomes a small bag of words
(the word hashes dedup already computed, words of 2+ characters, stop words out, the `terms` distinct words
with the lowest hash kept: a consistent sample, so two prompts keep the same words of what they share), 5 bytes
a term. At select the corpus's document frequencies pick the VOCABULARY most frequent words and give TF-IDF
weights (sublinear tf, l2), and TruncatedSVD fitted on a seeded sample projects every row to `dim`
dimensions, a chunk at a time. Measured on the 14,042 MMLU test questions clustered into their 57
subjects (NMI, MiniBatchKMeans; bench/select_embed_bench.py): ours 0.32, scikit-learn's TfidfVectorizer +
TruncatedSVD over the whole texts 0.36 (it keeps every word and needs the texts in one process), hashed words
projected at random (what a worker alone could do, no corpus fit) 0.18-0.21.

`sentence_transformers`: a model (all-MiniLM-L6-v2 by default) on the prompts read back from the spill; a
GPU job (5.4k prompts/s on an H200 for that shape)."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from functools import cache
from typing import Any, Protocol

import numpy as np
from numba import njit
from scipy.sparse import csr_matrix
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.preprocessing import normalize

from prep.hashing import MATCH_MIN_LEN, prompt_words, word_hashes
from prep.rows import Row
from prep.select.config import EmbedConfig
from prep.spill import Spill
from prep.text import prompt_text

FEATURES = 1 << 18  # hashed vocabulary columns: 64 MB of SVD components at dim 64
CHUNK = 1 << 16  # rows embedded at a time
VOCABULARY = 20_000  # the most frequent hashed words (in 2+ rows) the SVD sees: a 262k-column SVD took 17 s


@njit(cache=True, nogil=True)
def _bags(
    hashes: np.ndarray, offsets: np.ndarray, stop: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row (its word hashes are hashes[offsets[i]:offsets[i + 1]]): the k lowest distinct hashes that
    are not stop words, as hashed columns, with their counts (capped at 255), and how many it kept."""
    n_rows = len(offsets) - 1
    cols = np.empty(n_rows * k, dtype=np.uint32)
    counts = np.empty(n_rows * k, dtype=np.uint8)
    sizes = np.zeros(n_rows, dtype=np.uint8)
    n = 0
    for r in range(n_rows):
        s = np.sort(hashes[offsets[r] : offsets[r + 1]])
        i, kept = 0, 0
        while i < len(s) and kept < k:
            j = i
            while j < len(s) and s[j] == s[i]:
                j += 1
            pos = np.searchsorted(stop, s[i])
            if not (pos < len(stop) and stop[pos] == s[i]):
                cols[n] = np.uint32(s[i] % np.uint64(FEATURES))
                counts[n] = min(j - i, 255)
                n += 1
                kept += 1
            i = j
        sizes[r] = kept
    return cols[:n].copy(), counts[:n].copy(), sizes


@cache
def stop_hashes() -> np.ndarray:
    return np.unique(word_hashes(" ".join(sorted(ENGLISH_STOP_WORDS)), MATCH_MIN_LEN)[0])


def prompt_bags(rows: list[Row], terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows' bags of prompt words (2+ characters, as dedup hashes them; computed once per row): hashed
    columns, counts, and terms per row (in a worker)."""
    words = [prompt_words(r)[1] for r in rows]
    offsets = np.zeros(len(words) + 1, dtype=np.int64)
    np.cumsum([len(w) for w in words], out=offsets[1:])
    flat = np.concatenate(words) if words else np.empty(0, dtype=np.uint64)
    return _bags(flat, offsets, stop_hashes(), terms)


class Bags:
    """Every spilled row's bag: 5 bytes a term, one byte a row for its length."""

    def __init__(self) -> None:
        self.cols = array("I")
        self.counts = array("B")
        self.sizes = array("B")

    def extend(self, cols: np.ndarray, counts: np.ndarray, sizes: np.ndarray) -> None:
        self.cols.frombytes(cols.tobytes())
        self.counts.frombytes(counts.tobytes())
        self.sizes.frombytes(sizes.tobytes())

    def document_frequency(self, alive: np.ndarray) -> np.ndarray:
        """Per hashed column, how many alive rows hold it (a row's terms are distinct); a chunk of rows at a time,
        whose terms are contiguous."""
        sizes = np.frombuffer(self.sizes, dtype=np.uint8)
        cols = np.frombuffer(self.cols, dtype=np.uint32)
        df = np.zeros(FEATURES, dtype=np.int64)
        start = 0
        for lo in range(0, len(sizes), CHUNK):
            n = sizes[lo : lo + CHUNK].astype(np.int64)
            end = start + int(n.sum())
            df += np.bincount(cols[start:end][np.repeat(alive[lo : lo + CHUNK], n)], minlength=FEATURES)
            start = end
        return df

    def matrix(self, rows: np.ndarray, columns: np.ndarray | None = None, idf: np.ndarray | None = None) -> csr_matrix:
        """Raw counts of `rows` (ascending) over the hashed columns; with `columns` (hashed column -> vocabulary
        index or -1) and `idf`, TF-IDF (sublinear tf, l2) over the vocabulary."""
        sizes = np.frombuffer(self.sizes, dtype=np.uint8).astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        n = sizes[rows]
        indptr = np.concatenate([[0], np.cumsum(n)])
        take = np.repeat(starts[rows] - indptr[:-1], n) + np.arange(indptr[-1])
        cols = np.frombuffer(self.cols, dtype=np.uint32)[take]
        counts = np.frombuffer(self.counts, dtype=np.uint8)[take].astype(np.float32)
        if columns is None or idf is None:
            return csr_matrix((counts, cols, indptr), shape=(len(rows), FEATURES))
        mapped = columns[cols]
        known = mapped >= 0
        indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(np.repeat(np.arange(len(rows)), n)[known], minlength=len(rows)))]
        )
        data = (1 + np.log(counts[known])) * idf[mapped[known]]
        return normalize(csr_matrix((data, mapped[known], indptr), shape=(len(rows), len(idf))))


class Embedder(Protocol):
    def fit(self, rows: np.ndarray) -> None: ...

    def transform(self, rows: np.ndarray) -> np.ndarray: ...


class HashingEmbedder:
    def __init__(self, bags: Bags, config: EmbedConfig, alive: np.ndarray, seed: int) -> None:
        self.bags = bags
        self.dim = config.dim
        self.seed = seed
        df = bags.document_frequency(alive)
        live = int(alive.sum())
        vocabulary = np.sort(np.argsort(-df, kind="stable")[:VOCABULARY])
        vocabulary = vocabulary[df[vocabulary] >= 2]  # a word in one prompt says nothing about clusters
        self.columns = np.full(FEATURES, -1, dtype=np.int64)
        self.columns[vocabulary] = np.arange(len(vocabulary))
        self.idf = (np.log((1 + live) / (1 + df[vocabulary])) + 1).astype(np.float32)  # scikit-learn's smooth idf
        self.svd: TruncatedSVD | None = None

    def fit(self, rows: np.ndarray) -> None:
        """The SVD, unless fewer than 2 rows or 2 shared words leave nothing to project: then every row embeds
        at the origin, one cluster, and the scores alone choose."""
        if min(len(rows), len(self.idf)) < 2:
            self.svd = None
            return
        x = self.bags.matrix(rows, self.columns, self.idf)
        self.svd = TruncatedSVD(min(self.dim, min(x.shape) - 1), random_state=self.seed).fit(x)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        if self.svd is None:
            return np.zeros((len(rows), 1), dtype=np.float32)
        return normalize(self.svd.transform(self.bags.matrix(rows, self.columns, self.idf))).astype(np.float32)


class SentenceEmbedder:
    """A sentence-transformers model on the prompts read back from the spill."""

    def __init__(self, config: EmbedConfig, model_path: str, spill: Spill) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        self.config = config
        self.spill = spill
        self.device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model: Any = SentenceTransformer(model_path, device=self.device, trust_remote_code=False)
        self.model.max_seq_length = config.max_tokens

    def fit(self, rows: np.ndarray) -> None:
        return None

    def transform(self, rows: np.ndarray) -> np.ndarray:
        texts = [prompt_text(self.spill.row(int(i))) for i in rows]
        out = self.model.encode(texts, batch_size=self.config.batch_size, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)


def chunks(rows: np.ndarray, size: int = CHUNK) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
