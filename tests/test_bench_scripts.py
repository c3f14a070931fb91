"""Every README figure comes from a script in bench/: each script still runs, at its smallest size, and prints
the figures the README quotes (a bench script broke once when the reader's signature changed, unnoticed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

# script, arguments for a small run, patterns its output must hold
RUNS = [
    ("row_steps_bench.py", ["--repeat", "1"], [r"language\s+[\d.]+ us", r"decontam\s+[\d.]+ us", r"lid176, sample_chars 100\s+[\d,]+"]),
    ("prep_bench.py", ["--rows", "3000", "--baseline-rows", "500", "--near-rows", "1000", "--select-rows", "2000", "--work", "{tmp}"],
     [r"prep build: 3675 rows in [\d.]+s = [\d,]+ rows/s end to end, peak RSS [\d.]+ GB", r"select step on 2000 rows",
      r"near-dup stage on 500 rows: [\d,]+ rows/s", r"recall [\d.]+, precision [\d.]+"]),
    ("readers_bench.py", ["--copies", "2"], [r"prep read_json \(depth-checked\): [\d,]+ MB/s", r"sha256"]),
    ("runtime_table.py", [], [r"\| `[\w.-]+\.yml` \| \d+ x \d+ \S+ \| [\d,]+ \| [\d.]+ days \| \d+ days \| [\d,]+ \|"]),
    ("published_runs.py", [], [r"\| hf-blog-llama2-70b-fsdp-2x8 \| 2 x 8 a100-80gb \| multi_node \| [\d.,]+ h \|",
                               r"\| one_node \| \d+ \| [\d.]+ \| [\d.]+-[\d.]+ \|"]),
    ("eval_stderr.py", ["--data", str(REPO.parent / "shared/data")], [r"\| [^|]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|"]),
    ("select_embed_bench.py", [], [r"ours .*: NMI 0\.\d{3}", r"TruncatedSVD 64: NMI 0\.\d{3}"]),
]  # fmt: skip


@pytest.mark.e2e
@pytest.mark.parametrize("script, args, patterns", RUNS, ids=[r[0] for r in RUNS])
def test_bench_script_runs_and_prints_its_figures(tmp_path, script, args, patterns):
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *(a.format(tmp=tmp_path) for a in args)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    for pattern in patterns:
        assert re.search(pattern, res.stdout), (pattern, res.stdout[-3000:])


@pytest.mark.e2e
def test_same_node_gpu_bench_runs_on_the_cpu_too(tiny_llama, merged_jsonl, shared_data):
    """bench/same_node_gpu.py measures same_node on a real model on a GPU; here, at its smallest, it must still run
    both scoring paths and print the figures and prep fit's estimate beside them."""
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "same_node_gpu.py"), "--model", str(tiny_llama), "--data",
         str(merged_jsonl), "--tasks-data", str(shared_data), "--rows", "16", "--epochs", "1", "--seq-len", "64",
         "--mmlu-task", "mmlu_local_anatomy", "--mmlu-limit", "2", "--hellaswag-limit", "2"],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    for how in ("memory", "checkpoint"):
        assert re.search(rf"score_from {how}: [\d.]+ s for 1 epochs", res.stdout), res.stdout[-3000:]
        assert re.search(
            rf"score_from {how}: eval memory / GPU [\d.]+ \w+ \([\d.]+ GiB free beside training\)", res.stdout
        )
    assert (
        len(
            re.findall(
                r"epoch [01]: ok, hellaswag_local acc_norm [\d.]+, mmlu_local_anatomy acc [\d.]+; eval [\d.]+ s",
                res.stdout,
            )
        )
        == 4
    )
