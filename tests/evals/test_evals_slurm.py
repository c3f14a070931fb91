"""Slurm mode against a real single-node Slurm (tests/slurm_cluster.py): a job per checkpoint through
`sbatch`, its id in the job file and the report, `evals status` from `scontrol`, a failed job resubmitted,
and one that keeps failing recorded as failed for good. The smoke training in slurm mode is in
test_epoch_eval.py (it compares with the in-memory run there)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from slurm_cluster import slurm, wait_for  # noqa: F401  (the fixture)
from support.eval_jobs import model_job, smoke_config

from evals import report
from evals import slurm as evals_slurm
from evals.cli import main
from evals.errors import EvalsError
from evals.jobs import job_path
from evals.spec import EvalJob, SlurmSettings
from evals.status import epochs, held_checkpoints
from plugins.epoch_eval.args import EpochEvalConfig


def base_model_job(out: Path, tiny_llama: Path, shared_data: Path, **slurm_keys) -> Path:
    """The job the plugin submits for the base model (epoch 0)."""
    job = model_job(smoke_config(shared_data, mode="slurm", slurm=slurm_keys), out, tiny_llama)
    return job.save(job_path(out, 0))


def finished(job_path: Path) -> str | None:
    job = EvalJob.load(job_path)
    state, _ = evals_slurm.state(job.submissions[-1].job_id)
    return None if state in evals_slurm.ACTIVE else state


def test_the_batch_script_carries_the_template(tmp_path):
    settings = SlurmSettings(
        partition="gpu",
        account="proj",
        time="04:00:00",
        gpus=8,
        mem="200G",
        extra_sbatch=["--qos=high", "--exclusive"],
        setup="source /opt/venv/bin/activate",
        command="evals",
    )
    job = EvalJob(
        output_dir=str(tmp_path / "run"),
        epoch=3,
        global_step=30,
        checkpoint=str(tmp_path / "run/checkpoint-30"),
        model_args={"pretrained": "x"},
        mode="slurm",
        settings=EpochEvalConfig().settings(),
        slurm=settings,
    )
    path = tmp_path / "run/eval_jobs/epoch_3.json"
    lines = evals_slurm.script(job, path).splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ("--partition=gpu", "--account=proj", "--time=04:00:00", "--gpus=8", "--mem=200G", "--qos=high"):
        assert f"#SBATCH {line}" in lines
    assert f"#SBATCH --output={path.parent / 'logs' / 'epoch_3-%j.log'}" in lines
    assert lines[-2:] == ["source /opt/venv/bin/activate", f"exec evals run {path}"]
    # a stray line that is not an option is refused at validation
    try:
        SlurmSettings(extra_sbatch=["qos=high"])
    except ValueError as exc:
        assert "extra_sbatch takes sbatch options" in str(exc)
    else:
        raise AssertionError("a non-option extra_sbatch line was accepted")


def test_a_template_slurm_refuses_is_refused_before_training(slurm, tmp_path):  # noqa: F811
    evals_slurm.check_template(SlurmSettings(), tmp_path)  # the defaults fit the test cluster
    with pytest.raises(EvalsError, match=r"sbatch refuses the eval job template: .*invalid partition specified: a100"):
        evals_slurm.check_template(SlurmSettings(partition="a100"), tmp_path)
    with pytest.raises(EvalsError, match=r"sbatch refuses the eval job template: .*gres"):
        evals_slurm.check_template(SlurmSettings(gpus=8), tmp_path)  # the test node has no GPUs
    assert not list(tmp_path.iterdir())  # the probe script is gone
    assert evals_slurm.state("999999")[0] == evals_slurm.UNKNOWN  # --test-only submitted nothing


def test_a_failed_job_is_resubmitted_and_scored(slurm, tmp_path, tiny_llama, shared_data):  # noqa: F811
    """The first attempt dies before the eval (as a preempted or crashed job would), the second scores."""
    out = tmp_path / "run"
    mark = tmp_path / "first-attempt"
    path = base_model_job(
        out, tiny_llama, shared_data, setup=f"test -e {mark} || {{ touch {mark}; exit 3; }}", max_resubmits=2
    )
    first = evals_slurm.submit(path)
    assert wait_for(lambda: finished(path), 120, "the first sbatch job to end") == "FAILED"
    [row] = epochs(out)
    assert (row.state, row.scheduler, row.job_id, row.attempts) == (
        "running",
        "FAILED NonZeroExitCode",
        first.job_id,
        1,
    )

    evals_slurm.reconcile(out)  # what the plugin does while it waits, and `evals status --resubmit`
    job = EvalJob.load(path)
    assert [s.job_id for s in job.submissions] == [first.job_id, job.submissions[-1].job_id]
    second = job.submissions[-1]
    wait_for(lambda: finished(path), 600, "the resubmitted job to end")
    evals_slurm.reconcile(out)  # nothing to do: the report is there
    assert len(EvalJob.load(path).submissions) == 2

    got = report.read(report.report_path(out, 0))
    assert got["status"] == "ok" and got["mode"] == "slurm"
    assert got["scheduler"] == {"name": "slurm", "job_id": second.job_id}
    assert got["tasks"]["hellaswag_local"]["samples"] == 40
    assert "wrote" in Path(second.log).read_text()  # the job's output went to the recorded log
    [row] = epochs(out)
    assert (row.state, row.scheduler, row.job_id, row.attempts, row.log) == (
        "done",
        "COMPLETED",
        second.job_id,
        2,
        second.log,
    )
    status = CliRunner().invoke(main, ["status", str(out)])
    assert status.exit_code == 0, status.output
    assert "1 done, 0 failed, 0 running, 0 queued" in status.output


def test_a_job_that_keeps_failing_is_failed_for_good(slurm, tmp_path, tiny_llama, shared_data):  # noqa: F811
    out = tmp_path / "run"
    path = base_model_job(out, tiny_llama, shared_data, setup="echo broken node >&2; exit 3", max_resubmits=1)
    evals_slurm.submit(path)
    for attempt in (1, 2):
        wait_for(lambda: finished(path), 120, f"attempt {attempt} to end")
        evals_slurm.reconcile(out)
    job = EvalJob.load(path)
    assert len(job.submissions) == 2  # the first and one resubmission, then no more
    got = report.read(report.report_path(out, 0))
    assert got["status"] == "failed"
    error = got["tasks"]["hellaswag_local"]["error"]
    assert f"slurm job(s) {job.submissions[0].job_id}, {job.submissions[1].job_id} ended without a report" in error
    assert "FAILED" in error and "broken node" in error  # the scheduler's state and the log's tail
    assert got["scheduler"] == {"name": "slurm", "job_id": job.submissions[1].job_id}
    [row] = epochs(out)
    assert row.state == "failed" and not held_checkpoints(out)
    status = CliRunner().invoke(main, ["status", str(out), "--resubmit"])
    assert status.exit_code == 0 and "0 done, 1 failed" in status.output
    assert len(EvalJob.load(path).submissions) == 2  # failed for good: not resubmitted again
    assert json.loads(path.read_text())["slurm"]["max_resubmits"] == 1


def test_a_refused_sbatch_is_retried_then_failed_for_good(slurm, tmp_path, tiny_llama, shared_data, monkeypatch):  # noqa: F811
    """sbatch failing as it does while the controller restarts (a wrapper in front of the real sbatch):
    recorded in the job file, no exception out of reconcile (training goes on), submitted once sbatch works
    again; refusals that span SBATCH_PATIENCE_S give the epoch a failed report naming sbatch's error."""
    down = tmp_path / "controller-down"
    down.touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(
        f"#!/bin/sh\nif [ -e {down} ]; then\n  echo 'sbatch: error: Batch job submission failed: Unable to contact"
        f' slurm controller (connect failure)\' >&2\n  exit 1\nfi\nexec {shutil.which("sbatch")} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    out = tmp_path / "run"
    path = base_model_job(out, tiny_llama, shared_data, setup="exit 3", max_resubmits=0)
    with pytest.raises(EvalsError, match="Unable to contact slurm controller"):
        evals_slurm.submit(path)
    evals_slurm.reconcile(out)  # still down: a second refusal, recorded, nothing raised
    job = EvalJob.load(path)
    assert not job.submissions and len(job.refusals) == 2 and "connect failure" in job.refusals[-1].error
    [row] = epochs(out)
    assert (row.state, row.scheduler, row.held) == ("queued", "sbatch refused 2x", True)
    down.unlink()
    evals_slurm.reconcile(out)  # back: submitted, the refusals cleared
    job = EvalJob.load(path)
    assert len(job.submissions) == 1 and job.refusals == []
    assert evals_slurm.state(job.submissions[0].job_id)[0] != evals_slurm.UNKNOWN

    other = tmp_path / "other"
    path = base_model_job(other, tiny_llama, shared_data)
    down.touch()
    with pytest.raises(EvalsError):
        evals_slurm.submit(path)
    job = EvalJob.load(path)  # the first refusal, as if it came SBATCH_PATIENCE_S ago
    first = job.refusals[0].model_copy(update={"at": job.refusals[0].at - evals_slurm.SBATCH_PATIENCE_S})
    job.model_copy(update={"refusals": [first]}).save(path)
    evals_slurm.reconcile(other)  # one more try, refused: the refusals now span the patience
    assert len(EvalJob.load(path).refusals) == 2 and not report.report_path(other, 0).exists()
    evals_slurm.reconcile(other)
    got = report.read(report.report_path(other, 0))
    assert got["status"] == "failed" and got["scheduler"] == {"name": "slurm", "job_id": "-"}
    error = got["tasks"]["hellaswag_local"]["error"]
    assert "sbatch refused the job 2 time(s)" in error and "Unable to contact slurm controller" in error
    [row] = epochs(other)
    assert row.state == "failed" and not row.held
    evals_slurm.reconcile(other)  # failed for good: no more tries
    assert len(EvalJob.load(path).refusals) == 2
