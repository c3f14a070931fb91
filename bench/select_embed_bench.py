"""Which CPU embedding the select step clusters with: cluster quality and speed on the 14,042 MMLU test
questions, clustered into k=57 (their subjects) by MiniBatchKMeans; quality is the NMI of clusters and subjects.

    python bench/select_embed_bench.py [--minilm .cache/models/all-MiniLM-L6-v2] [--device cpu|cuda]

Compared: ours (dedup's word hashes, stop words out, bag of the 32 lowest hashes in the worker; corpus TF-IDF
over the 20k most frequent words and TruncatedSVD 64 at select), scikit-learn's TfidfVectorizer + TruncatedSVD
fitted on the texts (the reference), hashed words with a random projection (the most a worker can do
without a corpus fit), and, when `make models` has unpacked it, the real all-MiniLM-L6-v2 (the
`sentence_transformers` backend's default, as prep/select/embed.py runs it: 256 tokens, batch 256, normalized).
Times are one core's, per row, embedding only, except MiniLM's (torch's threads: both cores here); the machine
may be shared. bench/gpu_select_bench.py measures MiniLM on a GPU machine without this project's other
dependencies."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.metrics import normalized_mutual_info_score
from sklearn.preprocessing import normalize
from sklearn.random_projection import SparseRandomProjection

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.benchmarks import mmlu  # noqa: E402
from prep.rows import Row  # noqa: E402
from prep.select.config import EmbedConfig  # noqa: E402
from prep.select.embed import Bags, HashingEmbedder, prompt_bags  # noqa: E402

K = 57


def nmi(x: np.ndarray, labels: list[str]) -> float:
    km = MiniBatchKMeans(K, random_state=0, n_init=3, batch_size=4096).fit(x)
    return normalized_mutual_info_score(labels, km.labels_)


def minilm(path: str, device: str, texts: list[str], labels: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    model.max_seq_length = EmbedConfig().max_tokens
    model.encode(texts[:256], batch_size=256)  # warm up
    start = time.perf_counter()
    x = model.encode(texts, batch_size=EmbedConfig().batch_size, normalize_embeddings=True)
    seconds = time.perf_counter() - start
    print(
        f"all-MiniLM-L6-v2 ({device}): NMI {nmi(np.asarray(x), labels):.3f}; "
        f"{seconds / len(texts) * 1e6:.1f} us/row = {len(texts) / seconds:,.0f} rows/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minilm", default=str(REPO / ".cache/models/all-MiniLM-L6-v2"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    texts, labels = [], []
    data = REPO.parent / "shared/data"
    for subject in mmlu.subjects(data):
        questions = mmlu.read_split(mmlu.split_path(data, subject, "test"))
        texts += [q.question for q in questions]
        labels += [subject] * len(questions)
    rows = [
        Row(str(i), "mmlu", None, None, [{"from": "human", "value": t}, {"from": "gpt", "value": "."}])
        for i, t in enumerate(texts)
    ]
    prompt_bags([Row("x", "x", None, None, rows[0].conversations)], 32)  # compile before timing

    start = time.perf_counter()
    bags = Bags()
    for i in range(0, len(rows), 1024):
        bags.extend(*prompt_bags(rows[i : i + 1024], 32))
    worker = time.perf_counter() - start
    start = time.perf_counter()
    live = np.arange(len(rows))
    emb = HashingEmbedder(bags, EmbedConfig(), np.ones(len(rows), dtype=bool), seed=0)
    emb.fit(live)
    ours = emb.transform(live)
    main_s = time.perf_counter() - start
    print(
        f"ours (bags in workers, TF-IDF + SVD 64 at select): NMI {nmi(ours, labels):.3f}; "
        f"{worker / len(rows) * 1e6:.1f} us/row in workers (incl. word hashing), {main_s / len(rows) * 1e6:.1f} us/row at select"
    )

    start = time.perf_counter()
    x = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2).fit_transform(texts)
    ref = normalize(TruncatedSVD(64, random_state=0).fit_transform(x))
    print(
        f"scikit-learn TfidfVectorizer + TruncatedSVD 64: NMI {nmi(ref, labels):.3f}; "
        f"{(time.perf_counter() - start) / len(rows) * 1e6:.1f} us/row"
    )

    for dim in (64, 256):
        start = time.perf_counter()
        h = HashingVectorizer(n_features=2**18, stop_words="english", alternate_sign=False, norm=None).transform(texts)
        h.data = 1 + np.log(h.data)
        rp = normalize(SparseRandomProjection(dim, random_state=0, dense_output=True).fit_transform(normalize(h)))
        print(
            f"hashed words + random projection {dim} (no corpus fit): NMI {nmi(rp, labels):.3f}; "
            f"{(time.perf_counter() - start) / len(rows) * 1e6:.1f} us/row"
        )

    if Path(args.minilm).is_dir():
        minilm(args.minilm, args.device, texts, labels)
    else:
        print(f"all-MiniLM-L6-v2: not measured ({args.minilm} is not a directory: run `make models`)")


if __name__ == "__main__":
    main()
