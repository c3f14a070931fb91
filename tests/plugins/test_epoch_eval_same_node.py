"""same_node's pieces that need no training: the table of modes every package reads, and how an eval beside
training is sized from the free GPU memory each rank measured (a GPU run measures it for real; the figures here
are an A100-80GB node's, as ZeRO-3 with optimizer offload leaves it between epochs)."""

from __future__ import annotations

import socket
from typing import get_args

import pytest

from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.modes.same_node import CHILD_OVERHEAD, MIN_CACHE, GiB, GpuMemory, Unfit, sized
from prep.sizing.eval_modes import MODES, ModeName

HOST = socket.gethostname()
A100 = 80 * GiB


def node(free_gib: list[float]) -> list[GpuMemory]:
    return [GpuMemory(HOST, i, int(f * GiB), A100) for i, f in enumerate(free_gib)]


def test_one_table_of_modes():
    assert set(get_args(ModeName)) == set(MODES) == {"same_node", "queue", "slurm"}
    assert EpochEvalConfig().mode == "same_node"  # the default: one node, no spare GPUs, one command
    for name, mode in MODES.items():
        held = EpochEvalConfig.model_validate({"mode": name}).held_checkpoints()
        assert (held > 0) == mode.holds_checkpoints == (not mode.blocking)


def test_vllm_is_sized_to_the_fullest_gpu_and_spans_the_node():
    weights = 137.9e9  # Llama-2-70B in bf16
    args, how = sized({"dtype": "bfloat16"}, "vllm", node([58.0, 57.5, 60.1, 58.2, 58.0, 59.9, 58.3, 58.0]), weights)
    assert args["tensor_parallel_size"] == 8 and args["dtype"] == "bfloat16"
    # vLLM checks free memory >= utilization x total at start: budget = the smallest free - the child's overhead
    assert args["gpu_memory_utilization"] == pytest.approx((57.5 * GiB - CHILD_OVERHEAD) / A100, abs=0.01)
    assert args["gpu_memory_utilization"] * A100 <= 57.5 * GiB - CHILD_OVERHEAD
    assert "vLLM on 8 GPU(s)" in how and "57.5 GiB free of 80 GiB" in how
    # a lower value the user gave is kept; a higher one (0.9 of 80 GiB with 57.5 free) would fail vLLM's check
    assert sized({"gpu_memory_utilization": 0.5}, "vllm", node([57.5] * 8), weights)[0]["gpu_memory_utilization"] == 0.5
    assert sized({"gpu_memory_utilization": 0.9}, "vllm", node([57.5] * 8), weights)[0]["gpu_memory_utilization"] < 0.7


def test_an_eval_that_cannot_fit_beside_training_says_so():
    weights = 137.9e9
    with pytest.raises(Unfit, match=r"needs 17\.1 GiB per GPU .* 12\.0 GiB free of 80 GiB"):
        sized({}, "vllm", node([12.0] * 8), weights)
    with pytest.raises(Unfit, match="tensor_parallel_size 16 is more than the 8 GPU"):
        sized({"tensor_parallel_size": 16}, "vllm", node([60.0] * 8), weights)
    need = weights / 8 + MIN_CACHE + CHILD_OVERHEAD
    assert sized({}, "vllm", node([need / GiB + 0.1] * 8), weights)  # just enough


def test_hf_spreads_the_checkpoint_over_the_node_within_what_is_free():
    args, how = sized({"dtype": "bfloat16"}, "hf", node([40.0, 38.2]), 13.5e9)
    assert args["parallelize"] is True and args["max_memory_per_gpu"] == "36GiB"
    assert "hf on 2 GPU(s)" in how
    assert "parallelize" not in sized({}, "hf", node([40.0]), 13.5e9)[0]  # one GPU: lm-eval's own placement
    assert sized({"x": 1}, "hf", [], None) == ({"x": 1}, "no GPU: the eval runs on the CPU")


def test_a_relative_local_model_is_made_absolute_for_jobs_a_hub_id_is_not(tmp_path, monkeypatch):
    """A job may run from another directory or machine (a queue watcher, a Slurm job): `./demo-out/tiny-llama` in
    a recipe must reach it as an absolute path."""
    from plugins.epoch_eval import local_or_hub

    (tmp_path / "demo-out" / "tiny-llama").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert local_or_hub("./demo-out/tiny-llama") == str(tmp_path / "demo-out" / "tiny-llama")
    assert local_or_hub("meta-llama/Llama-2-70b-hf") == "meta-llama/Llama-2-70b-hf"


@pytest.mark.parametrize("key", ["poll_s", "max_wait", "remind_s"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_wait_that_cannot_run_is_refused_in_the_block(key, value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="finite number"):  # time.sleep(inf) failed at the first wait
        EpochEvalConfig.model_validate({"mode": "queue", key: value})


def test_scores_reach_a_trackio_run_at_their_epochs_steps(tmp_path):
    """trackio (Axolotl's use_trackio): the run training recorded is resumed by name and gets each epoch's
    scores at its global step; read back from trackio's own local store."""
    import json
    import os
    import subprocess
    import sys

    script = """
import json, sys
from evals.trackers import Trackers, TrackioRun, log_scores
for epoch, value in ((1, 0.25), (2, 0.5)):
    report = {"epoch": epoch, "global_step": 6 * epoch,
              "tasks": {"hellaswag": {"status": "ok", "metric": "acc_norm", "value": value}}}
    assert log_scores(Trackers(trackio=TrackioRun(project="smoke", name="run-a")), report, "test") == ["trackio"]
from trackio.sqlite_storage import SQLiteStorage
print(json.dumps([(row["step"], row["epoch_eval/hellaswag/acc_norm"]) for row in SQLiteStorage.get_logs("smoke", "run-a")]))
"""
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (logged,) = [line for line in done.stdout.splitlines() if line.startswith("[")]  # trackio prints its own lines
    assert json.loads(logged) == [[6, 0.25], [12, 0.5]]
