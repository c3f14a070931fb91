"""The README's main command, `make demo`, run as a user would (twice: a second run is idempotent).
It writes demo-out/ in the repo, as the README says."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from conftest import REPO

OUT = REPO / "demo-out"


def make_demo() -> subprocess.CompletedProcess[str]:
    run = subprocess.run(["make", "demo"], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    return run


def snapshot() -> dict:
    reports = OUT / "smoke/eval_reports"
    return {
        "mixture_sha256": hashlib.sha256((OUT / "merged.jsonl").read_bytes()).hexdigest(),
        "scores": {
            p.name: {t: r["value"] for t, r in json.loads(p.read_text())["tasks"].items()}
            for p in sorted(reports.glob("epoch_*.json"))
        },
        "checkpoints": sorted(p.name for p in (OUT / "smoke").glob("checkpoint-*")),
    }


@pytest.mark.e2e
def test_make_demo_runs_the_whole_chain_and_is_idempotent():
    first = make_demo()
    # it says where each artifact is
    for path in (
        "demo-out/merged.jsonl",
        "demo-out/dropped.jsonl",
        "demo-out/merged.jsonl.card.md",
        "demo-out/tiny-llama",
        "demo-out/smoke/eval_reports/epoch_*.json",
        "convergence.png",
    ):
        assert path in first.stdout
    # curation ran on the real samples and every row is accounted for
    manifest = json.loads((OUT / "merged.jsonl.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256((OUT / "merged.jsonl").read_bytes()).hexdigest()
    totals = manifest["totals"]
    assert totals["read"] == 1000 + 500 + 175
    assert totals["read"] == totals["kept"] + sum(totals["dropped"].values()) and totals["dropped"]
    assert len((OUT / "dropped.jsonl").read_text().splitlines()) == sum(totals["dropped"].values())
    # selected down to the demo's budget, and the data card shows it
    assert manifest["rows"] <= manifest["config"]["curation"]["select"]["budget"]["rows"]
    assert "variety index" in (OUT / "merged.jsonl.card.md").read_text()
    # two epochs trained, each saved and scored on MMLU and HellaSwag; the base model is epoch 0
    state = snapshot()
    assert len(state["checkpoints"]) == 2
    assert sorted(state["scores"]) == ["epoch_0.json", "epoch_1.json", "epoch_2.json"]
    for scores in state["scores"].values():
        assert set(scores) == {"mmlu_local", "hellaswag_local"} and all(0 <= v <= 1 for v in scores.values())
    summary = (OUT / "smoke/eval_reports/summary.md").read_text()
    assert "best epoch" in summary.lower()
    assert (OUT / "smoke/eval_reports/convergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    make_demo()
    assert snapshot() == state  # same mixture, same checkpoints, same scores


@pytest.mark.e2e
def test_make_demo_real_scores_a_real_model_above_chance(smollm2_dir):
    """`make demo-real`: SmolLM2-135M-Instruct one epoch on a shard of the demo mixture, HellaSwag 0-shot on 200
    rows before and after; measured 0.380 and 0.365 (stderr 0.034), chance being 0.25."""
    run = subprocess.run(["make", "demo-real"], cwd=REPO, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    reports = REPO / "demo-out/smollm2/eval_reports"
    scores = {
        p.name: json.loads(p.read_text())["tasks"]["hellaswag_local"] for p in sorted(reports.glob("epoch_*.json"))
    }
    assert sorted(scores) == ["epoch_0.json", "epoch_1.json"]
    for task in scores.values():
        assert task["status"] == "ok" and task["samples"] == 200 and task["value"] > 0.3, task["value"]
    assert (reports / "convergence.png").stat().st_size > 1000
