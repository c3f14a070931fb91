"""Clusters of prompts, their quotas under a budget, readable labels and the variety index."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.feature_extraction.text import CountVectorizer

from prep.select.embed import Embedder, chunks

KMEANS_BATCH = 4096


def default_clusters(rows: int) -> int:
    """sqrt(rows / 10) between 2 and 256: 11 for the demo's 1.3k rows, 256 from 655k rows."""
    return int(np.clip(round(np.sqrt(rows / 10)), 2, 256))


def assign(embedder: Embedder, live: np.ndarray, k: int, fit_rows: int, seed: int) -> np.ndarray:
    """A cluster per live row: the embedder and k-means are fitted on a seeded sample of at most `fit_rows`
    rows, then every row is embedded and assigned a chunk at a time (no corpus-sized matrix in memory)."""
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(live, size=min(fit_rows, len(live)), replace=False))
    embedder.fit(sample)
    x = np.concatenate([embedder.transform(part) for part in chunks(sample)])
    k = min(k, len(np.unique(x, axis=0)))  # never more clusters than distinct points
    km = MiniBatchKMeans(k, random_state=seed, n_init=1, batch_size=KMEANS_BATCH, compute_labels=False).fit(x)
    return np.concatenate([km.predict(embedder.transform(part)) for part in chunks(live)]).astype(np.int32)


def quotas(sizes: np.ndarray, budget: float, alpha: float) -> np.ndarray:
    """Each cluster's share of the budget: min(size, lam * size**alpha), lam set so the quotas sum to the
    budget (all of each cluster when the budget covers the corpus). With alpha < 1 the large clusters give up
    the most; a small cluster's unused quota goes to the others through lam."""
    sizes = sizes.astype(np.float64)
    if budget >= sizes.sum():
        return sizes
    w = np.where(sizes > 0, sizes**alpha, 0.0)
    lo, hi = 0.0, float(np.max(sizes / np.maximum(w, 1e-300)))
    for _ in range(200):  # bisection: the sum is monotone in lam
        lam = (lo + hi) / 2
        if np.minimum(sizes, lam * w).sum() < budget:
            lo = lam
        else:
            hi = lam
    return np.minimum(sizes, hi * w)


def fill_order(clusters: np.ndarray, scores: np.ndarray, sizes: np.ndarray, quota: np.ndarray) -> np.ndarray:
    """Positions of the rows in the order the budget takes them: within a cluster by score (best first, then
    position); across clusters by the share of its quota a cluster has used once the row is in, so the clusters
    fill together and, once within-quota rows run out, the rest of the budget goes to the next best rows of
    every cluster alike."""
    order = np.lexsort((np.arange(len(scores)), -scores, clusters))
    c = clusters[order]
    cum = np.cumsum(sizes[order].astype(np.float64))
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    before = np.repeat(cum[starts] - sizes[order][starts], np.diff(np.r_[starts, len(c)]))
    used = (cum - before) / np.maximum(quota[c], 1e-9)
    return order[np.lexsort((order, used))]


def variety(counts: np.ndarray) -> float:
    """exp(entropy) of the cluster distribution: the effective number of clusters (k when all are equal)."""
    p = counts[counts > 0] / max(counts.sum(), 1)
    return float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0


def labels(texts_by_cluster: list[list[str]], top: int = 4) -> list[str]:
    """Each cluster's top terms by class-based TF-IDF (BERTopic's c-TF-IDF): frequent in the cluster, rare in
    the others."""
    docs = [" ".join(t) for t in texts_by_cluster]
    if not any(docs):
        return ["" for _ in docs]
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b", lowercase=True)
    try:
        tf = vec.fit_transform(docs).toarray().astype(np.float64)
    except ValueError:  # no word of 3+ letters anywhere
        return ["" for _ in docs]
    terms = vec.get_feature_names_out()
    avg = tf.sum() / len(docs)
    weight = tf / np.maximum(tf.sum(axis=1, keepdims=True), 1) * np.log(1 + avg / np.maximum(tf.sum(axis=0), 1))
    out = []
    for row in weight:
        best = [i for i in np.lexsort((terms, -row))[:top] if row[i] > 0]
        out.append(" ".join(terms[i] for i in best))
    return out
