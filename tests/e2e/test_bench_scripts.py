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
    ("select_embed_bench.py", ["--minilm", "none"], [r"ours .*: NMI 0\.\d{3}", r"TruncatedSVD 64: NMI 0\.\d{3}"]),  # MiniLM: 5 min of CPU; the gpu_select_bench test runs it
    ("semantic_dedup_bench.py", ["--model", "{minilm}", "--thresholds", "0.8", "--background", "50"],
     [r"threshold 0\.80: recall [\d.]+ \(\d+/30 paraphrase pairs\), precision [\d.]+"]),
    ("select_scope_bench.py", ["--tokenizer", "{smollm2}"],
     [r"rows budget \d+, score_scope source: kept openorca_gpt4 \d+%", r"tokens budget [\d,]+, score_scope corpus"]),
    ("ifd_bench.py", ["--model", "{smollm2}", "--real", "8", "--swapped", "3"],
     [r"IFD with SmolLM2-135M-Instruct: 11 rows in [\d.]+ s = [\d.]+ rows/s", r"prefer aligned: keeps \d+ of \d+ swapped rows with IFD >= 1"]),
]  # fmt: skip
MODELS = {"minilm": "minilm_dir", "smollm2": "smollm2_dir"}  # placeholders for the real models (`make models`)


@pytest.mark.e2e
@pytest.mark.parametrize("script, args, patterns", RUNS, ids=[r[0] for r in RUNS])
def test_bench_script_runs_and_prints_its_figures(request, tmp_path, script, args, patterns):
    places = {"tmp": tmp_path}
    places |= {k: request.getfixturevalue(f) for k, f in MODELS.items() if any(f"{{{k}}}" in a for a in args)}
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *(a.format(**places) for a in args)],
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


def test_gpu_select_bench_packs_under_the_carry_limit_and_runs_on_cpu(tmp_path, minilm_dir, smollm2_dir):
    """The two steps the README gives for the GPU machine, the second on this CPU at its smallest size."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = str(REPO / "bench/gpu_select_bench.py")
    pack = [sys.executable, script, "pack", "--out", str(tmp_path / "gpu"), "--models", str(minilm_dir.parent)]
    res = subprocess.run(pack, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and re.search(r"packed .* \(([\d.]+) MiB", res.stdout), res.stderr[-3000:]
    assert float(re.search(r"\(([\d.]+) MiB", res.stdout).group(1)) < 60  # the tool carries 64 MiB with the tree
    small = ["--embed-rows", "64", "--mmlu-rows", "300", "--ifd-rows", "4", "--ifd-batch", "4"]
    run = [sys.executable, script, "run", "--dir", str(tmp_path / "gpu"), "--device", "cpu", *small]
    res = subprocess.run(run, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r"all-MiniLM-L6-v2 \(float32, cpu, batch 256\): [\d,]+ OpenOrca prompts/s", res.stdout)
    assert re.search(r"IFD, SmolLM2-135M shape \(float32, cpu, batch 4\): [\d.,]+ rows/s", res.stdout)
