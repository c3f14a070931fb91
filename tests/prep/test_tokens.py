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

from prep.tokens import ChatTokens, count_rows, jsonl_rows


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

    counted = count_rows(*jsonl_rows(merged_jsonl), counter)
    assert not counted.sampled
    assert counted.total.tokens == sum(t * n for (t, _), n in theirs.items())
    assert counted.total.trainable == sum(tr * n for (_, tr), n in theirs.items())
    assert set(counted.sources) == {r["source"] for r in rows}


def test_sampled_estimate_is_within_its_stated_bound(merged_jsonl, counter):
    exact = count_rows(*jsonl_rows(merged_jsonl), counter).total
    for seed in range(5):
        est = count_rows(*jsonl_rows(merged_jsonl), counter, exact_rows=100, sample=400, seed=seed)
        total = est.total
        assert est.sampled and total.rows == exact.rows and total.counted < exact.rows
        bound = est.to_json()["total"]
        assert abs(total.tokens - exact.tokens) <= bound["tokens_bound"], (seed, total, exact)
        assert abs(total.trainable - exact.trainable) <= bound["trainable_tokens_bound"], (seed, total, exact)
        assert bound["tokens_bound"] < 0.2 * exact.tokens  # a bound that says something


def test_build_manifest_has_the_token_counts_when_the_mixture_names_a_tokenizer(
    tmp_path, shared_data, tiny_llama, counter
):
    import orjson
    import yaml
    from conftest import with_shared_paths

    from prep.config import MixtureConfig
    from prep.pipeline import build, manifest_path

    config = with_shared_paths(yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text()), shared_data)
    config.setdefault("curation", {})["tokenizer"] = str(tiny_llama)
    out = tmp_path / "merged.jsonl"
    # default workers: rensa's thread pool started in this process would hang the builds forked after it
    build(MixtureConfig.model_validate(config), out, progress=False)
    tokens = orjson.loads(manifest_path(out).read_bytes())["tokens"]
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    for source in {r["source"] for r in rows}:
        mine = [counter.count(r["conversations"]) for r in rows if r["source"] == source]
        assert tokens["sources"][source] == {
            "rows": len(mine),
            "tokens": sum(t for t, _ in mine),
            "trainable_tokens": sum(tr for _, tr in mine),
        }
    assert tokens["total"]["rows"] == len(rows) and tokens["method"] == f"all {len(rows):,} rows counted"
    assert tokens["chat_template"] == "llama2_chat.jinja"
