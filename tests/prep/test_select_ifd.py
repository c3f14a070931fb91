"""The IFD scorer with the real SmolLM2-135M-Instruct (`make models`) on short real OpenOrca rows: its batched
values are Superfiltering's per-row computation, and `select` with `scorer: {kind: ifd}` drops the rows whose
answers were swapped between prompts when their IFD is >= 1 and never prefers the others."""

from __future__ import annotations

import sys

import numpy as np
import orjson
import pytest
from conftest import REPO

from prep import pipeline
from prep.config import MixtureConfig

sys.path.insert(0, str(REPO / "bench"))
from ifd_bench import as_row, sample


@pytest.fixture(scope="module")
def scorer(smollm2_dir):
    from prep.select.ifd import IfdScorer

    return IfdScorer.load(str(smollm2_dir), "cpu", 4, 1024)


@pytest.fixture(scope="module")
def rows(shared_data) -> list[dict]:
    """16 short real OpenOrca records (under 400 characters: SmolLM2 reads about 100 tokens/s here) and 4 others whose answers were rotated between their prompts."""
    real, swapped = sample(shared_data, 16, 4, max_chars=400)
    return real + swapped


@pytest.fixture(scope="module")
def ifd(scorer, rows) -> dict[str, float]:
    """The IFD of each row, by its id in a build of source `orca`."""
    from prep.select.ifd import instruction_answer

    values = scorer.score([instruction_answer(as_row(r)) for r in rows])
    return {f"orca/{r['id']}": float(v) for r, v in zip(rows, values, strict=True)}


def test_batched_ifd_is_the_papers_per_row_computation(scorer, rows, ifd):
    """Superfiltering's code_ifd/data_analysis.py, one row at a time: the loss of the answer's tokens after the
    prompt (`{instruction}\n`), and of the answer alone (all but its first token), as transformers computes a
    causal LM's loss from `labels`; the batched scorer pads, sorts by length and must agree."""
    import torch

    from prep.select.ifd import instruction_answer

    def reference(instruction: str, answer: str) -> float:
        tok, model = scorer.tok, scorer.model
        whole = tok.encode(f"{instruction}\n{answer}", return_tensors="pt")
        start = len(tok.encode(f"{instruction}\n"))
        labels = whole.clone()
        labels[0, :start] = -100
        alone = tok.encode(answer, return_tensors="pt")
        with torch.no_grad():
            cond = model(whole, labels=labels).loss
            direct = model(alone, labels=alone).loss
        return float(torch.exp(cond) / torch.exp(direct))

    some = rows[::5]
    expected = [reference(*instruction_answer(as_row(r))) for r in some]
    np.testing.assert_allclose([ifd[f"orca/{r['id']}"] for r in some], expected, rtol=1e-4)
    assert np.isnan(scorer.score([("What is 2+2?", "4")])[0])  # one answer token: no IFD, as in the papers


def test_select_with_ifd_drops_misaligned_rows_and_prefers_aligned_ones(tmp_path, rows, ifd, smollm2_dir):
    """At a 50% budget (bench/ifd_bench.py does this on 100 + 12 rows and the README reports it): every row at
    IFD >= 1 is dropped as misaligned, with its IFD, and the budget prefers lower IFD among the others."""
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    scorer = {"kind": "ifd", "model": str(smollm2_dir), "device": "cpu"}
    config = MixtureConfig.model_validate(
        {
            "sources": [{"name": "orca", "format": "openorca", "path": str(source)}],
            "curation": {"steps": ["select"], "select": {"budget": {"rows": 10}, "scorer": scorer}},
        }
    )
    manifest = pipeline.build(
        config, tmp_path / "out.jsonl", dropped=tmp_path / "dropped.jsonl", progress=False, workers=0
    )
    kept = {orjson.loads(x)["id"] for x in (tmp_path / "out.jsonl").read_bytes().splitlines()}
    dropped = [orjson.loads(x) for x in (tmp_path / "dropped.jsonl").read_bytes().splitlines()]
    misaligned = {d["row"]["id"]: d["detail"] for d in dropped if d["reason"] == "select_misaligned"}
    report = manifest["steps"]["select"]
    assert misaligned.keys() == {i for i, v in ifd.items() if v >= 1} and len(misaligned) >= 2
    assert all(i.startswith("orca/swapped-") for i in misaligned)  # no real row is misaligned to SmolLM2
    assert all(d == f"IFD {ifd[i]:.3f} >= max_ifd 1.0" for i, d in misaligned.items())
    assert report["ifd"]["rows"] == 20 and report["ifd"]["misaligned"] == len(misaligned)
    assert report["scorer"] == {"kind": "ifd", "model": str(smollm2_dir)} and len(kept) == 10
    card = (tmp_path / "out.jsonl.card.md").read_text()
    assert f"{len(misaligned)} of 20 rows dropped as misaligned (IFD >= max_ifd)" in card
    over_budget = {d["row"]["id"] for d in dropped if d["reason"] == "select_budget"}
    assert np.mean([ifd[i] for i in kept]) < np.mean([ifd[i] for i in over_budget])
