"""Speed, memory and near-dup quality of `prep build` on a realistic corpus made from the shared samples.

    python bench/prep_bench.py --rows 500000 --work /tmp/prep-bench

Prints: end-to-end rows/s and peak RSS of `prep build` (a subprocess; the demo curation with `select` at a
budget of 30% of the rows), the select step alone (its per-row work as a worker does it, its corpus-wide
work, its memory, and a straight line to 4.5M rows), the near-dup stage's rows/s next to a plain datasketch
MinHashLSH on the same rows, and recall/precision of near-dup detection against brute-force Jaccard on
planted pairs. Targets on 2 cores: >= 10k rows/s, <= 4 GB, recall and precision >= 0.95."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
ROW_GROUP = 100_000  # rows per parquet row group, written one at a time
sys.path.insert(0, str(REPO))

from prep.adapters import ADAPTERS  # noqa: E402
from prep.dedup.near import NearDedup, NearDedupConfig  # noqa: E402
from prep.pipeline import BATCH  # noqa: E402
from prep.rows import RawRecord, Row  # noqa: E402
from prep.select.config import SelectConfig  # noqa: E402
from prep.select.step import Select  # noqa: E402
from prep.source import SourceConfig  # noqa: E402
from prep.spill import Spill  # noqa: E402
from prep.step import Context  # noqa: E402
from prep.text import words  # noqa: E402


def perturb(text: str, rng: random.Random, vocab: list[str], share: float) -> str:
    w = text.split(" ")
    for i in rng.sample(range(len(w)), max(1, int(len(w) * share))):
        w[i] = rng.choice(vocab)
    return " ".join(w)


class Corpus:
    """OpenOrca-layout rows resampled from the sample with 30% of prompt words replaced (distinct rows), plus 2%
    exact and 3% planted near duplicates (1-10 words edited) of earlier rows. Row n is a pure function of
    (seed, n), so a duplicate regenerates its original instead of keeping it: the corpus streams at any size."""

    def __init__(self, shared: Path, seed: int) -> None:
        self.seeds = [
            orjson.loads(x) for x in (shared / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()
        ]
        self.vocab = sorted({w for r in self.seeds for w in r["question"].split()})
        self.seed = seed

    def row(self, n: int) -> tuple[dict, int | None]:
        """Row n, and the row it is a planted near duplicate of (None if it is not one)."""
        rng = random.Random(self.seed * 1_000_003 + n)
        roll, of = rng.random(), None
        if n and roll < 0.02:
            r = dict(self.row(rng.randrange(n))[0])
        elif n and roll < 0.05:
            of = rng.randrange(n)
            r = dict(self.row(of)[0])
            w = r["question"].split(" ")
            for i in rng.sample(range(len(w)), min(len(w), rng.randint(1, 10))):
                w[i] = rng.choice(self.vocab)
            r["question"] = " ".join(w)
        else:
            r = dict(rng.choice(self.seeds))
            r["question"] = perturb(r["question"], rng, self.vocab, 0.3)
            r["response"] = perturb(r["response"], rng, self.vocab, 0.1)
        r["id"] = f"{r['id'].split('.')[0]}.{n}"
        return r, of


def make_corpus(shared: Path, work: Path, rows: int, seed: int, keep: int) -> tuple[list[str], list[tuple[int, int]]]:
    """Writes the corpus as two parquet files (a third GPT-4, the rest GPT-3.5, as in OpenOrca) a row group at
    a time; returns the first `keep` prompts and the planted pairs among them."""
    corpus = Corpus(shared, seed)
    work.mkdir(parents=True, exist_ok=True)
    files = [(work / "1M-GPT4-Augmented.parquet", rows // 3), (work / "3_5M-GPT3_5-Augmented.parquet", rows)]
    questions, planted, n = [], [], 0
    with tqdm(total=rows, desc="corpus", unit="row") as bar:
        for path, stop in files:
            writer = None
            while n < stop:
                end, group = min(n + ROW_GROUP, stop), []
                for i in range(n, end):
                    r, of = corpus.row(i)
                    group.append(r)
                    if i < keep:
                        questions.append(r["question"])
                        if of is not None:
                            planted.append((of, i))
                n = end
                table = pa.Table.from_pylist(group)
                writer = writer or pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
                bar.update(len(group))
            if writer:
                writer.close()
    return questions, planted


def write_config(shared: Path, work: Path, rows: int) -> Path:
    config = yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text())
    config["sources"] = [
        {"name": "openorca_gpt4", "format": "openorca", "path": str(work / "1M-GPT4-Augmented.parquet")},
        {"name": "openorca_gpt35", "format": "openorca", "path": str(work / "3_5M-GPT3_5-Augmented.parquet")},
        {
            "name": "evol_instruct",
            "format": "evol_instruct",
            "path": str(shared / "evol_instruct/evol_instruct_v2_layout.json"),
        },
        {"name": "platypus", "format": "platypus", "path": str(shared / "platypus/open_platypus_layout.parquet")},
    ]
    for b in config["curation"]["decontam"]["benchmarks"]:
        b["path"] = str(shared / b["path"].removeprefix("../shared/data/"))
    config["curation"]["select"] = {"budget": {"rows": int(0.3 * rows)}}
    config["curation"]["mixture"]["strata"] = [
        {"sources": ["openorca_gpt4", "openorca_gpt35"], "by": ["subsource", "teacher"], "max_share": 0.2}
    ]
    path = work / "bench.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def near_stage(questions: list[str]) -> tuple[float, np.ndarray]:
    step = NearDedup(NearDedupConfig(), Context(seed=42))
    with Spill(Path("/tmp")) as spill:
        rows = [
            Row(str(i), "b", None, "gpt-4", [{"from": "human", "value": q}, {"from": "gpt", "value": "ok."}])
            for i, q in enumerate(questions)
        ]
        spill.extend([orjson.dumps(row.to_json()) for row in rows], [0] * len(rows))
        start = time.perf_counter()
        for i in range(0, len(rows), BATCH):
            batch = rows[i : i + BATCH]
            step.observe(batch, step.featurize(batch))
        found = step.find(np.ones(len(rows), dtype=bool), spill)
        speed = len(rows) / (time.perf_counter() - start)
    group = np.arange(len(rows))  # each row's group, named by the row it keeps
    group[found.dropped] = found.kept
    return speed, group


def select_stage(shared: Path, work: Path, rows: int, seed: int) -> None:
    """The select step alone on `rows` bench rows: featurize (a worker's per-row work, here on one core), then
    its corpus-wide select at a 30% budget, with the memory it holds per row and its peak at select."""
    corpus = Corpus(shared, seed)
    source = SourceConfig(name="b", format="openorca", path="bench")
    step = Select(SelectConfig.model_validate({"budget": {"rows": int(0.3 * rows)}}), Context(seed=42, sources=("b",)))
    featurize = 0.0
    with Spill(work) as spill:
        for start in tqdm(range(0, rows, BATCH), desc="select featurize", unit="batch"):
            batch = [
                ADAPTERS["openorca"](RawRecord("1M-GPT4-Augmented.parquet", n, corpus.row(n)[0]), source, n)
                for n in range(start, min(rows, start + BATCH))
            ]
            spill.extend([orjson.dumps(r.to_json()) for r in batch], [0] * len(batch))
            t = time.perf_counter()
            features = step.featurize(batch)
            featurize += time.perf_counter() - t
            step.observe(batch, features)
        held = sum(a.itemsize * len(a) for a in (step.bags.cols, step.bags.counts, step.bags.sizes, step.scores))
        figures = []  # (rows, seconds, peak bytes) of select on half the rows, then on all: a line through both
        for n in (rows // 2, rows):
            alive = np.zeros(rows, dtype=bool)
            alive[:n] = True
            t = time.perf_counter()
            step.run(alive, spill)
            seconds = time.perf_counter() - t
            tracemalloc.start()  # again, traced (tracing slows it down several times)
            step.run(alive, spill)
            figures.append((n, seconds, tracemalloc.get_traced_memory()[1]))
            tracemalloc.stop()
    report = step.report()
    (n0, t0, m0), (n1, t1, m1) = figures
    print(
        f"select step on {rows} rows: featurize {featurize / rows * 1e6:.1f} us/row on one core "
        f"({rows / featurize:,.0f} rows/s), select {t1:.1f}s ({rows / t1:,.0f} rows/s; {t0:.1f}s on {n0}; "
        f"{report['clusters']} clusters, variety {report['variety_before']:.1f} -> {report['variety_after']:.1f})"
    )
    print(
        f"  memory: {held / rows:.0f} bytes/row held ({held / 1e9:.2f} GB), {m1 / 1e9:.2f} GB more at select ({m0 / 1e9:.2f} on {n0})"
    )
    at = 4.5e6
    print(
        f"  to 4.5M rows, in proportion (an upper bound: SVD and k-means are fitted on at most fit_rows rows): "
        f"featurize {featurize * at / rows / 2:.0f}s on 2 workers, select {t1 * at / n1:.0f}s (line "
        f"through the two runs: {t1 + (t1 - t0) / (n1 - n0) * (at - n1):.0f}s), held {held * at / rows / 1e9:.2f} GB "
        f"+ {m1 * at / n1 / 1e9:.2f} GB at select"
    )


def datasketch_stage(questions: list[str]) -> float:
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    for i, q in enumerate(questions):
        w = words(q)
        m = MinHash(num_perm=128, seed=42)
        m.update_batch([" ".join(w[j : j + 3]).encode() for j in range(max(1, len(w) - 2))])
        if not lsh.query(m):
            lsh.insert(i, m)
    return len(questions) / (time.perf_counter() - start)


def grams(text: str) -> set:
    w = words(text)
    return {tuple(w[i : i + 3]) for i in range(max(1, len(w) - 2))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=500_000)
    ap.add_argument("--baseline-rows", type=int, default=100_000, help="rows both near-dup stages run on")
    ap.add_argument("--near-rows", type=int, default=500_000, help="rows the near-dup stage and recall run on")
    ap.add_argument("--select-rows", type=int, default=None, help="rows the select step alone runs on (--rows)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/prep-bench"))
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared/data")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    questions, planted = make_corpus(args.shared, args.work, args.rows, args.seed, args.near_rows)
    config = write_config(args.shared.resolve(), args.work, args.rows)
    start = time.perf_counter()
    # GNU time reports the build's own peak RSS; RUSAGE_CHILDREN would count this process's corpus pages,
    # which a forked child shares until it execs
    timed = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "maxrss_kb %M",
            Path(sys.executable).parent / "prep",
            "build",
            "--config",
            config,
            "--out",
            args.work / "out.jsonl",
            "--no-progress",
        ],
        check=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    rss_gb = int(timed.stderr.rsplit("maxrss_kb ", 1)[1].split()[0]) / 1024**2
    manifest = orjson.loads((args.work / "out.jsonl.manifest.json").read_bytes())
    total = manifest["totals"]["read"]
    print(f"prep build: {total} rows in {wall:.1f}s = {total / wall:,.0f} rows/s end to end, peak RSS {rss_gb:.2f} GB")
    print(f"  extrapolated to 4.5M rows: {4.5e6 / (total / wall) / 60:.1f} min")
    print(f"  drops: {manifest['totals']['dropped']}")

    select_stage(args.shared, args.work, args.select_rows or args.rows, args.seed)

    sub = questions[: args.baseline_rows]
    ours_sub, _ = near_stage(sub)
    theirs = datasketch_stage(sub)
    print(
        f"near-dup stage on {len(sub)} rows: {ours_sub:,.0f} rows/s (rensa + band hashes + verify), "
        f"datasketch MinHashLSH {theirs:,.0f} rows/s, ratio {ours_sub / theirs:.1f}x"
    )
    ours_all, groups = near_stage(questions)
    print(f"near-dup stage on {len(questions)} rows: {ours_all:,.0f} rows/s")

    truth = np.array(
        [
            len(grams(questions[a]) & grams(questions[b])) / len(grams(questions[a]) | grams(questions[b])) >= 0.8
            for a, b in planted
        ]
    )
    found = np.array([groups[a] == groups[b] for a, b in planted])
    tp = int((truth & found).sum())
    print(
        f"planted pairs {len(planted)} ({int(truth.sum())} with brute-force Jaccard >= 0.8): "
        f"recall {tp / max(truth.sum(), 1):.4f}, precision {tp / max(found.sum(), 1):.4f}"
    )


if __name__ == "__main__":
    main()
