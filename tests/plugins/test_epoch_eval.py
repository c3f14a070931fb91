"""The epoch_eval plugin through the real `axolotl train`: a report per epoch with both tasks, scores in
the trainer's log, numbers equal to the standalone `lm_eval` CLI on the saved checkpoint, the same
numbers from the in-memory model, the checkpoint in a child process (same_node), queue and slurm, failures
recorded while training completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, axolotl_train, smoke_recipe
from pydantic import ValidationError
from slurm_cluster import slurm, wait_for  # noqa: F401  (the fixture)
from support.eval_jobs import queue_events

SMOKE = yaml.safe_load((REPO / "recipes/smoke-tiny.yml").read_text())
TOL = 1e-6


def block(shared_data: Path, **changes) -> dict:
    """The smoke recipe's epoch_eval block, its data directory pointed at the fixture's."""
    return {**SMOKE["epoch_eval"], "task_data_dir": str(shared_data), **changes}


def train(workdir: Path, tiny_llama: Path, merged_jsonl: Path, **overrides) -> Path:
    run = axolotl_train(smoke_recipe(workdir, tiny_llama, merged_jsonl, **overrides))
    assert run.returncode == 0, run.stderr[-6000:]
    return workdir / "out"


def reports(out: Path) -> dict[int, dict]:
    return {int(p.stem.split("_")[1]): json.loads(p.read_text()) for p in (out / "eval_reports").glob("epoch_*.json")}


def checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))


@pytest.fixture(scope="module")
def memory_run(smoke_run) -> Path:
    """The smoke recipe as shipped (same_node, the in-memory model, base model as epoch 0), two epochs: the
    shared run."""
    return smoke_run.out


@pytest.fixture(scope="module")
def checkpoint_run(tmp_path_factory, tiny_llama, merged_jsonl, shared_data) -> Path:
    """Same training in same_node mode scoring the saved checkpoint in a child process, with a task name that
    does not exist and a task whose data file is missing (a data directory holding only hellaswag/)."""
    data = tmp_path_factory.mktemp("partial-data")
    (data / "hellaswag").symlink_to(shared_data / "hellaswag", target_is_directory=True)
    tasks = [
        {"name": "no_such_task", "num_fewshot": 0, "metric": "acc"},
        {"name": "mmlu_local_anatomy", "num_fewshot": 5, "metric": "acc"},
        {"name": "hellaswag_local", "num_fewshot": 10, "metric": "acc_norm", "limit": task_limit("hellaswag_local")},
    ]
    return train(
        tmp_path_factory.mktemp("checkpoint"),
        tiny_llama,
        merged_jsonl,
        epoch_eval=block(
            shared_data, score_from="checkpoint", task_data_dir=str(data), tasks=tasks, eval_base_model=False
        ),
    )


# ---- config validation ----------------------------------------------------------------------------


def validated(cfg: dict):
    from axolotl.integrations.base import PluginManager
    from axolotl.utils.config import prepare_plugins, validate_config
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault(cfg)
    prepare_plugins(cfg)
    assert "plugins.epoch_eval.EpochEvalPlugin" in PluginManager.get_instance().plugins  # import did not fail
    return validate_config(cfg)


def test_axolotl_validation_accepts_the_block_and_rejects_typos(tmp_path, tiny_llama, merged_jsonl, shared_data):
    cfg = yaml.safe_load(smoke_recipe(tmp_path, tiny_llama, merged_jsonl, epoch_eval=block(shared_data)).read_text())
    good = validated(dict(cfg))
    assert good.epoch_eval["mode"] == "same_node" and good.epoch_eval["score_from"] == "auto"
    assert [t["name"] for t in good.epoch_eval["tasks"]] == ["mmlu_local", "hellaswag_local"]

    with pytest.raises(ValidationError, match="limt"):
        validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "limt": 5}})
    with pytest.raises(ValidationError, match="num_fewshot"):
        validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "tasks": [{"name": "mmlu", "metric": "acc"}]}})
    with pytest.raises(ValidationError, match="backend 'vllm' scores a saved checkpoint"):
        validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "backend": "vllm", "score_from": "memory"}})
    with pytest.raises(ValidationError, match="score_from is for mode same_node"):
        validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "mode": "queue", "score_from": "memory"}})
    with pytest.raises(ValidationError, match="is not a duration"):
        validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "max_wait": "soon"}})
    assert validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "max_wait": "1.5h"}}).epoch_eval["max_wait"] == 5400
    with pytest.raises(ValidationError, match="remind_s"):  # a wait says so at least every 10 minutes
        validated({**cfg, "epoch_eval": {**cfg["epoch_eval"], "remind_s": 3600}})
    # Axolotl would silently drop a misspelt top-level block; the plugin refuses it at registration
    with pytest.raises(ValueError, match=r"unknown top-level key\(s\) \['epoch_evals'\]"):
        validated({**cfg, "epoch_evals": cfg["epoch_eval"]})


# ---- same_node mode, the in-memory model, through axolotl train --------------------------------------------------------------


@pytest.mark.e2e
def test_in_memory_writes_a_report_per_epoch_with_both_tasks(memory_run):
    got = reports(memory_run)
    assert sorted(got) == [0, 1, 2]  # the base model as epoch 0, then each epoch
    ckpts = checkpoints(memory_run)
    assert [got[e]["checkpoint"] for e in (1, 2)] == [str(c) for c in ckpts]
    assert [got[e]["global_step"] for e in (0, 1, 2)] == [0, *[int(c.name.split("-")[1]) for c in ckpts]]
    for epoch, r in got.items():
        assert r["epoch"] == epoch and r["status"] == "ok" and r["mode"] == "same_node"
        assert r["scheduler"] == {"name": "same_node", "job_id": "in memory"}
        assert r["lm_eval_version"] == version("lm_eval") and r["chat_template"] is False
        mmlu, hs = r["tasks"]["mmlu_local"], r["tasks"]["hellaswag_local"]
        assert (mmlu["metric"], mmlu["num_fewshot"], hs["metric"], hs["num_fewshot"]) == ("acc", 5, "acc_norm", 10)
        # the block's limit per MMLU subject, HellaSwag's own limit
        assert mmlu["samples"] == 57 * task_limit("mmlu_local") and hs["samples"] == task_limit("hellaswag_local")
        assert r["limit"] == {name: task_limit(name) for name in ("mmlu_local", "hellaswag_local")}
        assert mmlu["value"] == mmlu["raw"]["results"]["mmlu_local"]["acc,none"]
        assert 0 <= mmlu["value"] <= 1 and mmlu["stderr"] > 0 and mmlu["wall_time_s"] > 0
        assert set(mmlu["raw"]["results"]) >= {"mmlu_local", "mmlu_local_stem", "mmlu_local_anatomy"}
        assert hs["raw"]["n-shot"]["hellaswag_local"] == 10
    # training changed the model, so the scores differ somewhere between epochs
    assert len({r["tasks"]["mmlu_local"]["value"] for r in got.values()}) > 1


@pytest.mark.e2e
def test_in_memory_scores_go_into_the_trainer_log(memory_run):
    got = reports(memory_run)
    history = json.loads((checkpoints(memory_run)[-1] / "trainer_state.json").read_text())["log_history"]
    logged = [h for h in history if "epoch_eval/mmlu_local/acc" in h]
    # epoch 0 and epoch 1 were logged before the last checkpoint's state was written
    assert [h["epoch_eval/mmlu_local/acc"] for h in logged] == [got[e]["tasks"]["mmlu_local"]["value"] for e in (0, 1)]
    assert all(h["epoch_eval/failed_tasks"] == 0 for h in logged)


def task_limit(name: str) -> int:
    """The rows per (sub)task the smoke recipe asks for: the task's own limit, else the block's."""
    (task,) = [t for t in SMOKE["epoch_eval"]["tasks"] if t["name"] == name]
    return task.get("limit") or SMOKE["epoch_eval"]["limit"]


def lm_eval_cli(checkpoint: Path, task: str, fewshot: int, shared_data: Path, out: Path) -> dict:
    from evals.tasks import TASKS_DIR

    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [
            str(bin_dir / "lm_eval"),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={checkpoint}",
            "--device",
            "cpu",
            "--tasks",
            task,
            "--num_fewshot",
            str(fewshot),
            "--limit",
            str(task_limit(task)),
            "--batch_size",
            str(SMOKE["epoch_eval"]["batch_size"]),
            "--include_path",
            str(TASKS_DIR),
            "--metadata",
            json.dumps({"data_dir": str(shared_data)}),
            "--output_path",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    (result,) = out.rglob("results_*.json")
    return json.loads(result.read_text())["results"][task]


@pytest.mark.e2e
@pytest.mark.parametrize("task,fewshot,metric", [("mmlu_local", 5, "acc"), ("hellaswag_local", 10, "acc_norm")])
def test_in_memory_numbers_equal_the_lm_eval_cli_on_the_saved_checkpoint(
    memory_run, shared_data, tmp_path, task, fewshot, metric
):
    last = reports(memory_run)[2]
    cli = lm_eval_cli(Path(last["checkpoint"]), task, fewshot, shared_data, tmp_path)
    mine = last["tasks"][task]
    assert mine["value"] == pytest.approx(cli[f"{metric},none"], abs=TOL)
    assert mine["stderr"] == pytest.approx(cli[f"{metric}_stderr,none"], abs=TOL)


# ---- same_node mode, the checkpoint in a child process, failures ----------------------------------------------------------------------


@pytest.mark.e2e
def test_checkpoint_evals_record_failures_and_training_completes(checkpoint_run, memory_run):
    got = reports(checkpoint_run)
    assert sorted(got) == [1, 2]
    assert (checkpoint_run / "model.safetensors").is_file()  # training ran to the end
    for epoch, r in got.items():
        assert r["status"] == "partial" and r["mode"] == "same_node"
        bad, missing, ok = (r["tasks"][n] for n in ("no_such_task", "mmlu_local_anatomy", "hellaswag_local"))
        assert bad["status"] == "failed" and "no_such_task" in bad["error"]
        assert missing["status"] == "failed" and "mmlu/test/anatomy_test.csv" in missing["error"]
        assert ok["status"] == "ok"
        # same seed, same data: the checkpoint equals the in-memory run's, and so does the score
        in_memory = reports(memory_run)[epoch]["tasks"]["hellaswag_local"]
        assert ok["value"] == pytest.approx(in_memory["value"], abs=TOL)
        assert r["model_args"]["pretrained"] == r["checkpoint"]
    history = json.loads((checkpoints(checkpoint_run)[-1] / "trainer_state.json").read_text())["log_history"]
    assert [h["epoch_eval/failed_tasks"] for h in history if "epoch_eval/failed_tasks" in h] == [2]


@pytest.mark.e2e
def test_in_memory_eval_leaves_training_untouched(checkpoint_run, memory_run):
    """The in-memory evals ran inside the training process; the losses match the run that scored checkpoints."""

    def losses(out: Path) -> list[float]:
        history = json.loads((checkpoints(out)[-1] / "trainer_state.json").read_text())["log_history"]
        return [h[k] for h in history for k in ("loss", "eval_loss") if k in h]

    assert losses(memory_run) == losses(checkpoint_run)


# ---- queue mode and the watcher ---------------------------------------------------------------------


@pytest.mark.e2e
def test_evals_watch_runs_queued_jobs_until_training_is_done(checkpoint_run, tmp_path):
    """The jobs the plugin wrote for its child processes are queue jobs too (queue mode only enqueues them
    instead of running them): queued for a fresh output dir, `evals watch` runs them all and stops."""
    from evals import queue
    from evals.spec import EvalJob

    out = tmp_path / "queued"
    for path in sorted((checkpoint_run / "eval_jobs").glob("epoch_*.json")):
        job = EvalJob.load(path)
        queue.enqueue(job.model_copy(update={"output_dir": str(out), "mode": "queue"}))
    queue.mark_training_done(out)

    bin_dir = Path(sys.executable).parent
    run = subprocess.run(
        [str(bin_dir / "evals"), "watch", str(out), "--poll", "1"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "ran 2 job(s): epoch 1 partial, epoch 2 partial" in run.stdout
    states = {d.name: sorted(p.name for p in d.iterdir()) for d in (out / "eval_queue").iterdir() if d.is_dir()}
    assert states == {"pending": [], "running": [], "done": [], "failed": ["epoch_1.json", "epoch_2.json"]}  # partial
    before = reports(checkpoint_run)
    for epoch, r in reports(out).items():
        assert r["mode"] == "queue"
        assert {n: t["status"] for n, t in r["tasks"].items()} == {
            n: t["status"] for n, t in before[epoch]["tasks"].items()
        }
        assert r["tasks"]["hellaswag_local"]["value"] == before[epoch]["tasks"]["hellaswag_local"]["value"]


# ---- evals report -----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_evals_report_renders_table_summary_and_plot(memory_run, checkpoint_run, tmp_path):
    from click.testing import CliRunner

    from evals.cli import main
    from evals.summary import load_runs, mean_score

    got = reports(memory_run)
    best = max(got.values(), key=lambda r: (mean_score(r), -r["epoch"]))
    result = CliRunner().invoke(main, ["report", str(memory_run)])
    assert result.exit_code == 0, result.output
    assert "mmlu_local acc" in result.output and "hellaswag_local acc_norm" in result.output
    assert f"best epoch: {best['epoch']}" in result.output
    md = (memory_run / "eval_reports/summary.md").read_text()
    hs, mmlu = got[1]["tasks"]["hellaswag_local"], got[1]["tasks"]["mmlu_local"]
    # MMLU also as the plain mean of its 57 subjects (the Open LLM Leaderboard v1's MMLU)
    subjects = [
        v["acc,none"]
        for k, v in mmlu["raw"]["results"].items()
        if k.startswith("mmlu_local_")
        and k not in ("mmlu_local_stem", "mmlu_local_other", "mmlu_local_social_sciences", "mmlu_local_humanities")
    ]
    assert len(subjects) == mmlu["subtasks"] == 57 and mmlu["subtask_mean"] == pytest.approx(sum(subjects) / 57)
    cells = (
        f"{hs['value']:.4f} ± {hs['stderr']:.4f} | {mmlu['value']:.4f} ± {mmlu['stderr']:.4f} | "
        f"{mmlu['subtask_mean']:.4f}"
    )
    assert (
        f"| 1{' *' if best['epoch'] == 1 else ''} | {got[1]['global_step']} | {cells} | {mean_score(got[1]):.4f} | ok |"
        in md
    )
    png = (memory_run / "eval_reports/convergence.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    # across runs: one combined summary; the run whose epochs all had failures has no best epoch
    result = CliRunner().invoke(main, ["report", str(memory_run), str(checkpoint_run), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "summary.md").read_text()
    assert "## Best epoch per run" in md and "none (no epoch scored every task)" in md
    assert "epoch 1 no_such_task:" in md and (tmp_path / "convergence.png").is_file()
    assert load_runs([memory_run])[0].best()["epoch"] == best["epoch"]
    # several runs without --out is a usage error, not a silent pick
    assert CliRunner().invoke(main, ["report", str(memory_run), str(checkpoint_run)]).exit_code == 2


# ---- slurm mode through axolotl train ---------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory, tiny_llama, merged_jsonl, shared_data) -> Path:  # noqa: F811
    """The smoke recipe in slurm mode on the test cluster: each epoch (and the base model) one sbatch job;
    training ends when all are scored (wait_at_end)."""
    return train(
        tmp_path_factory.mktemp("slurm"),
        tiny_llama,
        merged_jsonl,
        epoch_eval=block(shared_data, mode="slurm", poll_s=2, slurm={"max_resubmits": 1}),
    )


@pytest.mark.e2e
def test_slurm_mode_scores_every_epoch_through_sbatch_like_in_memory(slurm_run, memory_run):
    from evals.cli import main
    from evals.jobs import job_path
    from evals.slurm import state
    from evals.spec import EvalJob
    from evals.status import epochs

    got, in_memory = reports(slurm_run), reports(memory_run)
    assert sorted(got) == [0, 1, 2]
    for epoch, r in got.items():
        job = EvalJob.load(job_path(slurm_run, epoch))
        [submission] = job.submissions  # none failed, none resubmitted
        assert r["mode"] == "slurm" and r["status"] == "ok"
        assert r["scheduler"] == {"name": "slurm", "job_id": submission.job_id}
        assert state(submission.job_id)[0] == "COMPLETED" and Path(submission.log).is_file()
        # the same checkpoints (same seed and data) scored in another process, through the scheduler
        for name, t in r["tasks"].items():
            assert t["value"] == pytest.approx(in_memory[epoch]["tasks"][name]["value"], abs=TOL), (epoch, name)
            assert t["stderr"] == pytest.approx(in_memory[epoch]["tasks"][name]["stderr"], abs=TOL)
    assert got[2]["checkpoint"] == str(checkpoints(slurm_run)[-1])
    rows = epochs(slurm_run)
    assert [(r.epoch, r.state, r.scheduler, r.report) for r in rows] == [
        (e, "done", "COMPLETED", "ok") for e in (0, 1, 2)
    ]
    status = CliRunner().invoke(main, ["status", str(slurm_run)])
    assert status.exit_code == 0 and "3 done, 0 failed, 0 running, 0 queued, 0 unscored" in status.output


# ---- checkpoints held until scored --------------------------------------------------------------------


def test_rotation_keeps_held_checkpoints_beyond_the_limit(tmp_path):
    from plugins.epoch_eval.retention import rotate

    dirs = []
    for n, step in enumerate((10, 20, 30, 40, 50)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        os.utime(d, (1e9 + 10 * n, 1e9 + 10 * n))
        dirs.append(str(d))
    held = {dirs[1]}  # checkpoint-20's eval is still queued
    assert rotate(str(tmp_path), 2, None, held) == [dirs[0], dirs[2]]  # the limit counts the others only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-20", "checkpoint-40", "checkpoint-50"]
    assert rotate(str(tmp_path), 2, None, set()) == [dirs[1]]  # scored: it rotates out like any other
    assert rotate(str(tmp_path), 1, dirs[3], set()) == []  # the best and the most recent always stay
    assert rotate(str(tmp_path), None, None, set()) == []


@pytest.mark.e2e
def test_a_slow_eval_never_loses_its_checkpoint(tmp_path, tiny_llama, merged_jsonl, shared_data):
    """Queue mode with save_total_limit 1 and no watcher yet: the Trainer alone would delete epoch 1's
    checkpoint at epoch 2's save. The plugin holds both, and at epoch 3's end training waits (2 pending
    = max_pending_checkpoints). A watcher started then scores everything: every epoch has an ok report."""
    from evals import queue

    config = smoke_recipe(
        tmp_path,
        tiny_llama,
        merged_jsonl,
        num_epochs=3,
        save_total_limit=1,
        epoch_eval=block(shared_data, mode="queue", max_pending_checkpoints=2, poll_s=1),
    )
    out = tmp_path / "out"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path / "train.log"
    with log.open("w") as f:
        training = subprocess.Popen(
            [str(bin_dir / "axolotl"), "train", str(config), "--launcher", "python"],
            cwd=REPO,
            env=env,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "training waits at an epoch end for room among the held checkpoints: 3 eval(s) not "
                 "finished [epoch 0 queued" in log.read_text(errors="replace") or training.poll() is not None, 900,
                 "training to wait for its evals")  # fmt: skip
        assert training.poll() is None, log.read_text()[-4000:]
        held = sorted(p.name for p in queue.queue_dir(out, "pending").glob("epoch_*.json"))
        assert held == ["epoch_0.json", "epoch_1.json", "epoch_2.json"]
        assert len(checkpoints(out)) == 2  # save_total_limit 1, but both unscored checkpoints are still here
        time.sleep(3)
        assert training.poll() is None and len(checkpoints(out)) == 2  # still waiting: nothing was scored
        watch = subprocess.run(
            [str(bin_dir / "evals"), "watch", str(out), "--poll", "1"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert watch.returncode == 0, watch.stderr[-4000:]
        assert training.wait(timeout=900) == 0, log.read_text()[-4000:]
    finally:
        if training.poll() is None:
            training.kill()
    got = reports(out)
    assert sorted(got) == [0, 1, 2, 3]
    assert all(r["status"] == "ok" for r in got.values()), {e: r["status"] for e, r in got.items()}
    assert sorted(p.name for p in queue.queue_dir(out, "done").iterdir()) == [f"epoch_{e}.json" for e in range(4)]
    events = [(e["event"], e["epoch"]) for e in queue_events(out)]
    assert sorted(events) == sorted([("claimed", e) for e in range(4)] + [("done", e) for e in range(4)])
