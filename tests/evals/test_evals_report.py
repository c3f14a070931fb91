"""`evals report` on reports that do not belong together or are broken: another run's report, other
settings, a stale duplicate, null/NaN/out-of-range scores (failed, never best), a missing key or a
string value (one line naming the file and key, exit 1, no traceback; `--debug` shows it). And what the
report says about comparability with published numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from evals import report
from evals.published import LEADERBOARD_V1
from evals.spec import EvalSettings, TaskSpec

EVALS = str(Path(sys.executable).parent / "evals")
SETTINGS = EvalSettings(
    tasks=[
        TaskSpec(name="mmlu", num_fewshot=5, metric="acc"),
        TaskSpec(name="hellaswag", num_fewshot=10, metric="acc_norm"),
    ]
)


def task(metric: str, value, stderr=0.01, **extra) -> dict:
    return {"status": "ok", "metric": metric, "value": value, "stderr": stderr, "num_fewshot": 5, **extra}


def write_run(out: Path, scores: dict[int, tuple], **changes) -> dict[int, Path]:
    """A run's reports as the plugin writes them (report.build), with the given MMLU/HellaSwag scores."""
    paths = {}
    for epoch, (mmlu, hs) in scores.items():
        built = report.build(
            output_dir=out,
            epoch=epoch,
            global_step=10 * epoch,
            checkpoint=str(out / f"checkpoint-{10 * epoch}"),
            mode="queue",
            settings=SETTINGS,
            tasks={
                "mmlu": task("acc", mmlu, subtask_mean=mmlu + 0.01 if isinstance(mmlu, float) else mmlu, subtasks=57),
                "hellaswag": {**task("acc_norm", hs), "num_fewshot": 10},
            },
            started=time.time(),
            dtype="bfloat16",
        )
        paths[epoch] = report.write(out, {**built, **changes})
    return paths


def evals(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EVALS, *args], capture_output=True, text=True, timeout=120)


def one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    [line] = run.stderr.strip().splitlines()
    return line


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_a_clean_run_reports_both_mmlu_scores_and_what_they_compare_with(tmp_path):
    out = tmp_path / "run"
    write_run(out, {0: (0.60, 0.80), 1: (0.62, 0.81), 2: (0.61, 0.83)})
    run = evals("report", str(out))
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert "best epoch: 2" in text  # mean 0.72 beats 0.715 and 0.70
    harness = f"lm-eval {version('lm_eval')}"
    assert f"{harness}, backend hf, hellaswag 10-shot acc_norm, mmlu 5-shot acc, chat template off" in text
    assert "batch size 8, dtype bfloat16" in text
    for model, (mmlu, hs) in LEADERBOARD_V1.items():
        assert f"{model} {mmlu:.2f}" in text and f"{model} {hs:.2f}" in text
    assert "57-subject mean (column 'subject mean') is the Open LLM Leaderboard v1 MMLU" in text
    md = (out / "eval_reports/summary.md").read_text()
    assert "| epoch | step | hellaswag acc_norm | mmlu acc | mmlu subject mean | mean | status |" in md
    assert "| 2 * | 20 | 0.8300 ± 0.0100 | 0.6100 ± 0.0100 | 0.6200 | 0.7200 | ok |" in md
    assert "Known gaps between harness versions" in md


@pytest.mark.parametrize(
    "bad,why",
    [
        (None, "score is None (lm-eval produced no number)"),
        (float("nan"), "score is nan (lm-eval produced no number)"),
        (1.7, "score 1.7 is outside [0, 1] for metric acc"),
        (-0.2, "score -0.2 is outside [0, 1] for metric acc"),
    ],
)
def test_a_null_nan_or_out_of_range_score_is_failed_not_a_crash_and_never_best(tmp_path, bad, why):
    out = tmp_path / "run"
    paths = write_run(out, {1: (0.50, 0.50), 2: (0.60, 0.60)})
    # the plugin's writer stores NaN as null; a hand-made NaN comes as the JSON extension literal
    edit(paths[2], lambda r: r["tasks"]["mmlu"].update(value=bad))
    run = evals("report", str(out))
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert "best epoch: 1" in text and f"epoch 2 mmlu: invalid report: {why}" in text


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda r: r["tasks"]["mmlu"].update(value="0.61"), "key tasks.mmlu.value is '0.61', not a number"),
        (lambda r: r["tasks"]["hellaswag"].pop("metric"), "key tasks.hellaswag.metric is missing"),
        (lambda r: r["tasks"]["mmlu"].pop("value"), "key tasks.mmlu.value is missing"),
        (lambda r: r.pop("epoch"), "key epoch is None, expected a whole number >= 0"),
        (lambda r: r.update(epoch="2"), "key epoch is '2', expected a whole number >= 0"),
        (lambda r: r.update(tasks=[]), "key tasks is missing or empty ([])"),
        (lambda r: r["tasks"]["mmlu"].update(stderr="n/a"), "key tasks.mmlu.stderr is 'n/a', not a number"),
        (lambda r: r["tasks"]["mmlu"].update(status=1), "key tasks.mmlu.status is 1, not a string"),
    ],
)
def test_a_missing_key_or_a_string_value_is_one_line_naming_file_and_key(tmp_path, change, message):
    out = tmp_path / "run"
    paths = write_run(out, {1: (0.50, 0.50), 2: (0.60, 0.60)})
    edit(paths[2], change)
    assert one_line_error(evals("report", str(out))) == f"Error: {paths[2]}: {message} (--debug for the traceback)"


def test_not_json_and_debug_traceback(tmp_path):
    out = tmp_path / "run"
    paths = write_run(out, {1: (0.5, 0.5)})
    paths[1].write_bytes(b"\xff\xfe{")
    line = one_line_error(evals("report", str(out)))
    assert line.startswith(f"Error: {paths[1]}: not JSON (")
    debug = evals("--debug", "report", str(out))
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    "key,value",
    [
        ("output_dir", "/elsewhere/other-run"),
        ("backend", "vllm"),
        ("lm_eval_version", "0.4.2"),
        ("limit", {"mmlu": 5, "hellaswag": None}),
        ("batch_size", "auto"),
        ("dtype", "float16"),
    ],
)
def test_a_report_from_another_run_or_other_settings_is_refused(tmp_path, key, value):
    out = tmp_path / "run"
    paths = write_run(out, {0: (0.5, 0.5), 1: (0.55, 0.55), 2: (0.6, 0.6)})
    edit(paths[1], lambda r: r.update({key: value}))
    line = one_line_error(evals("report", str(out)))
    assert line.startswith(f"Error: {paths[1]}: from another run or other settings: {key} is {json.dumps(value)} here")
    assert f"in 2 other report(s) of {paths[1].parent}" in line


def test_other_few_shot_or_a_checkpoint_of_another_run_is_refused(tmp_path):
    out = tmp_path / "run"
    paths = write_run(out, {1: (0.5, 0.5), 2: (0.6, 0.6), 3: (0.7, 0.7)})
    edit(paths[3], lambda r: r["tasks"]["mmlu"].update(num_fewshot=0))
    assert "from another run or other settings: tasks is" in one_line_error(evals("report", str(out)))
    # an older report without output_dir: its checkpoint's directory says which run it belongs to
    edit(paths[3], lambda r: (r["tasks"]["mmlu"].update(num_fewshot=5), r.pop("output_dir")))
    edit(paths[3], lambda r: r.update(checkpoint="/other/run/checkpoint-30"))
    line = one_line_error(evals("report", str(out)))
    assert line.startswith(f'Error: {paths[3]}: from another run or other settings: output_dir is "/other/run" here')


def test_a_stale_duplicate_epoch_is_refused(tmp_path):
    out = tmp_path / "run"
    paths = write_run(out, {1: (0.5, 0.5), 2: (0.6, 0.6)})
    copy = paths[2].with_name("epoch_2 (copy).json")
    copy.write_bytes(paths[2].read_bytes())
    line = one_line_error(evals("report", str(out)))
    assert line.startswith(f"Error: {copy}: holds epoch 2 but is named epoch_2 (copy).json")
    copy.unlink()
    edit(paths[1], lambda r: r.update(epoch=2))  # epoch_1.json now claims epoch 2: two reports of epoch 2
    assert one_line_error(evals("report", str(out))).startswith(f"Error: {paths[1]}: holds epoch 2 but is named")


def test_a_moved_run_is_flagged_not_refused(tmp_path):
    old = tmp_path / "old"
    write_run(old, {1: (0.5, 0.5), 2: (0.6, 0.6)})
    moved = tmp_path / "moved"
    old.rename(moved)
    run = evals("report", str(moved))
    assert run.returncode == 0, run.stderr
    assert f"note: reports were written for {old} (a moved or copied run?)" in " ".join(run.stdout.split())


def test_status_and_report_refuse_what_is_not_a_run(tmp_path):
    line = one_line_error(evals("status", str(tmp_path / "nope")))
    assert (
        line
        == f"Error: {tmp_path / 'nope'}: no such directory (expected a training run's output_dir) (--debug for the traceback)"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "not a training run with evals" in one_line_error(evals("status", str(empty)))
    assert "no reports in" in one_line_error(evals("report", str(empty)))


def test_a_report_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    import os

    from click.testing import CliRunner

    from evals.cli import main

    (tmp_path / "eval_reports").mkdir()
    os.mkfifo(tmp_path / "eval_reports" / "epoch_1.json")
    result = CliRunner().invoke(main, ["report", str(tmp_path)])  # read_bytes() on it blocked for ever
    assert result.exit_code == 1 and "epoch_1.json: not a regular file (a FIFO)" in result.output
