"""The file queue with leases: a watcher killed by SIGKILL mid-job takes its eval child with it, its job's
lease expires, another watcher reruns it and it is scored once; a directory that is not a run is
refused in one line; a malformed job is filed under failed/ with its reason."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
from conftest import REPO
from slurm_cluster import wait_for
from support.eval_jobs import model_job, queue_events, smoke_config

from evals import queue, report

EVALS = str(Path(sys.executable).parent / "evals")


def enqueue_base_model(out: Path, tiny_llama: Path, shared_data: Path, epoch: int = 1) -> None:
    queue.enqueue(model_job(smoke_config(shared_data, mode="queue"), out, tiny_llama, epoch))


def watcher(out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [EVALS, "watch", str(out), "--poll", "1", "--lease", "4", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_watchers_job_is_rerun_by_another_and_scored_once(tmp_path, tiny_llama, shared_data):
    out = tmp_path / "run"
    enqueue_base_model(out, tiny_llama, shared_data)
    queue.mark_training_done(out)
    first = watcher(out)
    child = wait_for(
        lambda: next(iter(psutil.Process(first.pid).children()), None), 60, "the first watcher's eval child"
    )
    [claimed] = list(queue.queue_dir(out, "running").glob("epoch_1.*.json"))
    assert claimed.name == f"epoch_1.{socket.gethostname()}-{first.pid}.json"
    first.send_signal(signal.SIGKILL)  # mid-job: the child is loading lm-eval or scoring
    first.communicate()
    gone, alive = psutil.wait_procs([child], timeout=15)
    assert gone and not alive, "the eval child outlived its killed watcher"
    assert not report.report_path(out, 1).exists()
    assert claimed.exists()  # the dead watcher's job is still `running`, its lease now unrenewed

    second = watcher(out)
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr[-3000:]
    assert "ran 1 job(s): epoch 1 ok" in stdout
    states = {d.name: sorted(p.name for p in d.iterdir()) for d in queue.queue_dir(out).iterdir() if d.is_dir()}
    assert states == {"pending": [], "running": [], "done": ["epoch_1.json"], "failed": []}
    events = [(e["event"], e["epoch"], e.get("worker")) for e in queue_events(out)]
    first_worker, second_worker = f"{socket.gethostname()}-{first.pid}", f"{socket.gethostname()}-{second.pid}"
    assert events == [
        ("claimed", 1, first_worker),
        ("expired", 1, first_worker),
        ("claimed", 1, second_worker),
        ("done", 1, second_worker),
    ]
    got = report.read(report.report_path(out, 1))
    assert got["status"] == "ok" and got["scheduler"] == {"name": "queue", "worker": second_worker}


def test_watch_refuses_a_directory_that_is_not_a_run(tmp_path):
    typo = tmp_path / "outptus/run"
    run = subprocess.run([EVALS, "watch", str(typo), "--poll", "1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"Error: {typo}: not a queue-mode training run (no eval_queue/ inside); check the path: training with "
        "epoch_eval.mode: queue creates it when it starts (--debug for the traceback)"
    ]
    debug = subprocess.run([EVALS, "--debug", "watch", str(typo)], capture_output=True, text=True, timeout=60)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "EvalsError" in debug.stderr


def test_a_malformed_job_is_filed_under_failed_with_its_reason(tmp_path):
    out = tmp_path / "run"
    queue.create(out)
    pending = queue.queue_dir(out, "pending")
    (pending / "epoch_3.json").write_text('{"epoch": 3, "output_dir": ')  # cut short
    (pending / "epoch_4.json").write_text("[4]")
    (pending / "notes.txt").write_text("not a job")
    queue.mark_training_done(out)
    run = subprocess.run([EVALS, "watch", str(out), "--poll", "1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ran 0 job(s)" in run.stdout and "Traceback" not in run.stderr
    failed = queue.queue_dir(out, "failed")
    assert sorted(p.name for p in failed.iterdir()) == [
        "epoch_3.json",
        "epoch_3.json.reason.txt",
        "epoch_4.json",
        "epoch_4.json.reason.txt",
        "notes.txt",
        "notes.txt.reason.txt",
    ]
    reason3 = (failed / "epoch_3.json.reason.txt").read_text()
    assert reason3.startswith(f"{queue.queue_dir(out, 'running')}/epoch_3.") and "not an eval job" in reason3
    assert (
        "not an eval job: field (file): Input should be an object" in (failed / "epoch_4.json.reason.txt").read_text()
    )
    assert "not an eval job name (epoch_<n>.json)" in (failed / "notes.txt.reason.txt").read_text()
    assert not list(pending.iterdir()) and not list(queue.queue_dir(out, "running").iterdir())
