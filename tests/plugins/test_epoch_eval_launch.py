"""The epoch_eval plugin under a real multi-process launch: `axolotl train --launcher torchrun` with 2 ranks (DDP
over gloo on this CPU machine). The single-node recipe's mode (same_node) scores every epoch on the training
node itself with no other process, the in-memory model and the checkpoint in a child process alike, through a
kill at each point of an epoch's end and a resume after each: every epoch ends with exactly one ok report, and
`evals status` and `evals report` are right at every point between. A queue run nobody watches says so, again
and again, and max_wait does what it says. The scores reach W&B (its offline run files) and tensorboard."""

from __future__ import annotations

import importlib.util
import json
import re
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import REPO, axolotl_launch, axolotl_train, smoke_recipe
from slurm_cluster import slurm  # noqa: F401  (the fixture)
from support.trackers import tensorboard_scalars, wandb_history

from evals.cli import main as evals_cli

pytestmark = pytest.mark.e2e
SMOKE = yaml.safe_load((REPO / "recipes/smoke-tiny.yml").read_text())
# small on purpose: a launch scores 3 epochs, and a chain launches 3 times
TASKS = [
    {"name": "mmlu_local_anatomy", "num_fewshot": 5, "metric": "acc", "limit": 4},
    {"name": "hellaswag_local", "num_fewshot": 10, "metric": "acc_norm", "limit": 8},
]
ROWS = 100  # 95 train after the recipe's 5% validation split
STEPS_PER_EPOCH = 6  # ceil(95 / 16): 2 ranks x micro batch 8, the shipped recipe's 16 sequences per step
KILL = "EPOCH_EVAL_TEST_KILL"


@pytest.fixture(scope="module")
def launch_rows(tmp_path_factory: pytest.TempPathFactory, merged_jsonl: Path, tiny_llama: Path) -> Path:
    """The demo mixture's first ROWS conversations that fit the recipe's sequence_len with room for the chat
    template, so the kill points (optimizer steps) stay where they are when the demo mixture changes size."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    limit = yaml.safe_load((REPO / "recipes/smoke-tiny.yml").read_text())["sequence_len"] - 32
    rows = []
    for line in merged_jsonl.read_text().splitlines():
        turns = json.loads(line)["conversations"]
        if sum(len(tokenizer(t["value"]).input_ids) + 8 for t in turns) <= limit:
            rows.append(line)
    assert len(rows) >= ROWS, f"the demo mixture has {len(rows)} rows within {limit} tokens; the launches need {ROWS}"
    path = tmp_path_factory.mktemp("launch") / "rows.jsonl"
    path.write_text("\n".join(rows[:ROWS]) + "\n")
    return path


def recipe(workdir: Path, tiny_llama: Path, launch_rows: Path, shared_data: Path, **eval_changes) -> Path:
    """The smoke recipe for a 2-rank launch, resumable, with tensorboard and offline W&B on."""
    return smoke_recipe(
        workdir,
        tiny_llama,
        launch_rows,
        plugins=["support.cpu_ranks.CpuRanksPlugin", "support.faults.FaultsPlugin", *SMOKE["plugins"]],
        micro_batch_size=8,
        auto_resume_from_checkpoints=True,
        use_tensorboard=True,
        wandb_project="epoch-eval-test",
        wandb_mode="offline",
        wandb_run_id=f"run-{uuid.uuid4().hex[:8]}",
        epoch_eval={
            **SMOKE["epoch_eval"],
            "task_data_dir": str(shared_data),
            "tasks": TASKS,
            "limit": None,
            **eval_changes,
        },
    )


def launch(config: Path, kill: str | None = None, nproc: int = 2):
    workdir = config.parent
    env = {"WANDB_DIR": str(workdir), "WANDB_MODE": "offline", KILL: kill or ""}
    return axolotl_launch(config, workdir / "launch.log", nproc=nproc, env=env)


def logged(out: Path, wandb_root: Path, run_id: str) -> tuple[list[tuple[int, float]], list[int]]:
    """HellaSwag's score as W&B holds it (step, value) and the steps tensorboard holds it at."""
    key = "epoch_eval/hellaswag_local/acc_norm"
    in_wandb = [(int(r["train/global_step"]), r[key]) for r in wandb_history(wandb_root, run_id) if key in r]
    in_tb = [step for d in (out / "runs").iterdir() for step, _ in tensorboard_scalars(d).get(key, [])]
    return sorted(in_wandb), sorted(in_tb)


def reports(out: Path) -> dict[int, dict]:
    return {int(p.stem.split("_")[1]): json.loads(p.read_text()) for p in (out / "eval_reports").glob("epoch_*.json")}


def report_bytes(out: Path) -> dict[int, bytes]:
    return {int(p.stem.split("_")[1]): p.read_bytes() for p in (out / "eval_reports").glob("epoch_*.json")}


def status(out: Path) -> list[tuple[int, str]]:
    from evals.status import epochs

    return [(r.epoch, r.state) for r in epochs(out)]


def report_text(out: Path) -> str:
    result = CliRunner().invoke(evals_cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


def killed(run) -> None:
    assert run.returncode != 0 and "faults: killing the launch" in run.log, run.log[-3000:]


def check_complete(out: Path, before: dict[int, bytes], wandb_root: Path, run_id: str) -> None:
    """Epochs 0..2 each with exactly one ok report; the ones scored before the last kill untouched (not redone);
    each score once in W&B and in tensorboard, at the epoch's own step."""
    got = reports(out)
    assert sorted(got) == [0, 1, 2]
    assert all(r["status"] == "ok" for r in got.values()), {e: r["status"] for e, r in got.items()}
    assert [got[e]["global_step"] for e in (0, 1, 2)] == [0, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert {e: b for e, b in report_bytes(out).items() if e in before} == before
    assert status(out) == [(0, "done"), (1, "done"), (2, "done")]
    text = report_text(out)
    assert "MISSING" not in text and "INCOMPLETE" not in text and "best epoch: " in text

    in_wandb, in_tb = logged(out, wandb_root, run_id)
    assert in_wandb == [(got[e]["global_step"], got[e]["tasks"]["hellaswag_local"]["value"]) for e in (0, 1, 2)]
    assert in_tb == [0, STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]


def test_same_node_in_memory_loses_no_epoch_to_kills(tmp_path, tiny_llama, launch_rows, shared_data):
    """The shipped smoke mode (same_node, the in-memory model) under 2 ranks: killed during epoch 2's training,
    then during epoch 2's eval, then resumed to the end."""
    config = recipe(tmp_path, tiny_llama, launch_rows, shared_data)
    out, run_id = tmp_path / "out", yaml.safe_load(config.read_text())["wandb_run_id"]

    killed(launch(config, kill=f"train:{STEPS_PER_EPOCH + 2}"))
    assert sorted(reports(out)) == [0, 1] and status(out) == [(0, "done"), (1, "done")]
    assert "MISSING" not in report_text(out)  # epoch 2 was never reached: nothing is missing yet
    before = report_bytes(out)

    killed(launch(config, kill=f"eval:{2 * STEPS_PER_EPOCH}"))
    assert report_bytes(out) == before  # the resume did not score epochs 0 and 1 again
    assert status(out) == [(0, "done"), (1, "done"), (2, "unscored")]
    text = report_text(out)
    assert re.search(r"2 .*MISSING \(unscored\)", text) and "INCOMPLETE RUN" in text

    run = launch(config)
    assert run.returncode == 0, run.log[-4000:]
    assert "has no ok report from these settings: scoring it before training" in run.log
    check_complete(out, before, tmp_path, run_id)
    assert reports(out)[2]["scheduler"] == {"name": "same_node", "job_id": "in memory"}


def test_same_node_checkpoint_child_loses_no_epoch_to_kills(tmp_path, tiny_llama, launch_rows, shared_data):
    """same_node scoring the saved checkpoint in a child process, under 2 ranks: killed between epoch 1's save
    and its eval, then during the child's eval of epoch 2, then resumed to the end."""
    config = recipe(tmp_path, tiny_llama, launch_rows, shared_data, score_from="checkpoint")
    out, run_id = tmp_path / "out", yaml.safe_load(config.read_text())["wandb_run_id"]

    killed(launch(config, kill=f"saved:{STEPS_PER_EPOCH}"))
    assert (out / f"checkpoint-{STEPS_PER_EPOCH}").is_dir() and sorted(reports(out)) == [0]
    assert status(out) == [(0, "done"), (1, "unscored")]
    assert re.search(r"1 .*MISSING \(unscored\)", report_text(out))
    before = report_bytes(out)

    killed(launch(config, kill=f"eval:{2 * STEPS_PER_EPOCH}"))
    assert sorted(reports(out)) == [0, 1] and status(out) == [(0, "done"), (1, "done"), (2, "unscored")]
    assert report_bytes(out)[0] == before[0]
    before = report_bytes(out)

    run = launch(config)
    assert run.returncode == 0, run.log[-4000:]
    check_complete(out, before, tmp_path, run_id)
    got = reports(out)
    assert all(got[e]["scheduler"] is None for e in (1, 2))  # `evals run` in the training's own child
    assert got[2]["model_args"]["pretrained"] == str(out / f"checkpoint-{2 * STEPS_PER_EPOCH}")


def test_queue_without_a_watcher_says_so_and_max_wait_lets_training_go_on(
    tmp_path, tiny_llama, launch_rows, shared_data
):
    """Queue mode, nobody running `evals watch`: at epoch 2's end training waits for room, says so naming the
    command, again every remind_s; after max_wait it withdraws epoch 1's unstarted eval (a failed report says it
    went unscored) and goes on. A watcher started afterwards scores epoch 2, into the training's W&B run and
    tensorboard directory."""
    config = recipe(
        tmp_path,
        tiny_llama,
        launch_rows,
        shared_data,
        mode="queue",
        eval_base_model=False,
        max_pending_checkpoints=1,
        poll_s=0.5,
        remind_s=2,
        max_wait="8s",
        on_max_wait="continue",
    )
    out, run_id = tmp_path / "out", yaml.safe_load(config.read_text())["wandb_run_id"]
    run = launch(config)
    assert run.returncode == 0, run.log[-4000:]
    waits = re.findall(r"training waits at an epoch end for room among the held checkpoints: 1 eval\(s\) not "
                       r"finished \[epoch 1 queued \(file queue\)\]; start `evals watch (\S+)`", run.log)  # fmt: skip
    assert len(waits) >= 3 and set(waits) == {str(out)}, run.log[-4000:]  # said at once, then every 2 s
    assert "on_max_wait is continue: epoch(s) [1] withdrawn unscored" in run.log
    assert reports(out)[1]["status"] == "failed" and "unscored" in reports(out)[1]["tasks"]["hellaswag_local"]["error"]
    assert status(out) == [(1, "failed"), (2, "queued")]

    result = CliRunner().invoke(evals_cli, ["watch", str(out), "--once", "--poll", "1"])
    assert result.exit_code == 0 and "ran 1 job(s): epoch 2 ok" in result.output, result.output
    assert status(out) == [(1, "failed"), (2, "done")]
    score = reports(out)[2]["tasks"]["hellaswag_local"]["value"]
    assert logged(out, tmp_path, run_id) == ([(2 * STEPS_PER_EPOCH, score)], [2 * STEPS_PER_EPOCH])


def test_slurm_mode_under_two_ranks_scores_every_epoch_into_the_trackers(
    slurm,  # noqa: F811
    tmp_path,
    tiny_llama,
    launch_rows,
    shared_data,
):
    """Slurm mode under 2 ranks: one sbatch job per epoch (and the base model); rank 0 waits at the end for the
    last ones (wait_at_end) while rank 1 waits on a file; each job logs its scores into the training's W&B run
    and tensorboard directory."""
    config = recipe(tmp_path, tiny_llama, launch_rows, shared_data, mode="slurm", poll_s=1, remind_s=5)
    out, run_id = tmp_path / "out", yaml.safe_load(config.read_text())["wandb_run_id"]
    run = launch(config)
    assert run.returncode == 0, run.log[-4000:]
    got = reports(out)
    assert sorted(got) == [0, 1, 2] and all(r["status"] == "ok" for r in got.values())
    assert all(r["mode"] == "slurm" and r["scheduler"]["name"] == "slurm" for r in got.values())
    assert status(out) == [(0, "done"), (1, "done"), (2, "done")]
    scores = [(r["global_step"], r["tasks"]["hellaswag_local"]["value"]) for _, r in sorted(got.items())]
    assert logged(out, tmp_path, run_id) == (scores, [s for s, _ in scores])


@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None or not torch.cuda.is_available(),
    reason="DeepSpeed is a GPU-container extra, not in the CPU setup (constraints-cpu.txt), and its ZeRO-3 needs an "
    "accelerator: runs in the training image on a GPU machine",
)
def test_same_node_under_deepspeed_zero3_scores_the_gathered_checkpoint(tmp_path, tiny_llama, launch_rows, shared_data):
    """ZeRO-3 shards the weights over the ranks: score_from auto scores the checkpoint (its 16-bit weights are
    gathered at save) in a child process beside training."""
    config = recipe(tmp_path, tiny_llama, launch_rows, shared_data)
    cfg = yaml.safe_load(config.read_text())
    cfg.update(deepspeed=str(REPO / "recipes/deepspeed/zero3_bf16.json"), bf16=True, plugins=SMOKE["plugins"])
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    run = launch(config, nproc=max(1, min(2, torch.cuda.device_count())))
    assert run.returncode == 0, run.log[-4000:]
    got = reports(tmp_path / "out")
    assert sorted(got) == [0, 1, 2] and all(r["status"] == "ok" for r in got.values())
    assert all(r["scheduler"] is None for e, r in got.items() if e > 0)  # the checkpoint, in a child process


def test_queue_max_wait_fail_stops_training_with_the_command_to_run(tmp_path, tiny_llama, launch_rows, shared_data):
    config = smoke_recipe(
        tmp_path,
        tiny_llama,
        launch_rows,
        epoch_eval={
            **SMOKE["epoch_eval"],
            "task_data_dir": str(shared_data),
            "tasks": TASKS,
            "mode": "queue",
            "eval_base_model": False,
            "max_pending_checkpoints": 1,
            "poll_s": 0.5,
            "max_wait": 3,
        },
    )
    run = axolotl_train(config)
    assert run.returncode != 0
    log = run.stdout + run.stderr
    assert "Traceback" not in log[log.index("max_wait") :]  # a user's condition, said in one line
    assert re.search(r"epoch_eval: waited \d+ s \(max_wait\) at an epoch end .* evals not finished: "
                     r"epoch 1 queued\. start `evals watch \S+/out`", log), log[-4000:]  # fmt: skip
    assert not (tmp_path / "out" / f"checkpoint-{2 * 6}").exists()  # stopped before epoch 2's save


def test_an_eval_child_gets_none_of_the_launchers_variables():
    from evals.environment import child_environment

    launched = {
        "RANK": "1", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "8", "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "x", "ACCELERATE_USE_DEEPSPEED": "true", "GROUP_RANK": "0",
        "PATH": "/usr/bin", "CUDA_VISIBLE_DEVICES": "0,1", "HF_HOME": "/cache", "WANDB_MODE": "offline",
        "WANDB_SERVICE": "2-1234-tcp-localhost-5555",
    }  # fmt: skip
    assert child_environment(launched) == {
        "PATH": "/usr/bin", "CUDA_VISIBLE_DEVICES": "0,1", "HF_HOME": "/cache", "WANDB_MODE": "offline"
    }  # fmt: skip
