"""Token counts of the mixture: equal to what `axolotl preprocess` stores, and the sampled estimate within its
stated bound."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, smoke_recipe

from prep.tokens import ChatTokens, count_jsonl


@pytest.fixture(scope="module")
def counter(tiny_llama: Path) -> ChatTokens:
    return ChatTokens.load(str(tiny_llama))


@pytest.mark.e2e
def test_counts_equal_axolotl_preprocess(tmp_path, tiny_llama, merged_jsonl, counter):
    import datasets
    import orjson

    # a sequence_len above every demo row, so Axolotl keeps them all and the comparison covers every row
    config = smoke_recipe(tmp_path, tiny_llama, merged_jsonl, sequence_len=8192, plugins=[])
    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [str(bin_dir / "axolotl"), "preprocess", str(config)],
        cwd=REPO,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    saved = [p.parent for p in (tmp_path / "prepared").rglob("dataset_info.json")]
    assert len(saved) == 1, saved
    prepared = datasets.load_from_disk(str(saved[0]))
    theirs = Counter((len(r["input_ids"]), sum(x != -100 for x in r["labels"])) for r in prepared)

    rows = [orjson.loads(line) for line in merged_jsonl.read_bytes().splitlines()]
    ours = Counter(counter.count(r["conversations"]) for r in rows)
    assert sum(ours.values()) == len(rows) == len(prepared)
    assert ours == theirs  # row by row: every (tokens, trainable) pair, not just the sums

    counted = count_jsonl(merged_jsonl, counter)
    assert not counted.sampled
    assert counted.total.tokens == sum(t * n for (t, _), n in theirs.items())
    assert counted.total.trainable == sum(tr * n for (_, tr), n in theirs.items())
    assert set(counted.sources) == {r["source"] for r in rows}


def test_sampled_estimate_is_within_its_stated_bound(merged_jsonl, counter):
    exact = count_jsonl(merged_jsonl, counter).total
    for seed in range(5):
        est = count_jsonl(merged_jsonl, counter, exact_rows=100, sample=400, seed=seed)
        total = est.total
        assert est.sampled and total.rows == exact.rows and total.counted < exact.rows
        bound = est.to_json()["total"]
        assert abs(total.tokens - exact.tokens) <= bound["tokens_bound"], (seed, total, exact)
        assert abs(total.trainable - exact.trainable) <= bound["trainable_tokens_bound"], (seed, total, exact)
        assert bound["tokens_bound"] < 0.2 * exact.tokens  # a bound that says something
