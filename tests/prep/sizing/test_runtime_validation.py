"""The time model against published runs (prep/sizing/published_runs.yml): each run timed by `prep fit` from its
recipe copy; the runs that set a constant reproduce their figure; the error band `prep fit` prints for each regime
is what the table gives (bench/published_runs.py prints the same table)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from prep.cli import main
from prep.sizing.accuracy import BANDS
from prep.sizing.published import load_runs, regime_stats

RUNS = load_runs()


@pytest.fixture(scope="module")
def timed(tmp_path_factory) -> dict[str, dict]:
    work = tmp_path_factory.mktemp("published")
    out = {}
    for run in RUNS:
        result = CliRunner().invoke(main, run.fit_args(work))
        out[run.id] = json.loads(result.stdout)["time"]  # a memory refusal still prints the time
    return out


def ratio(timed: dict[str, dict], run_id: str) -> float:
    run = next(r for r in RUNS if r.id == run_id)
    return timed[run_id]["total_seconds"] / run.published_seconds


def test_each_calibration_run_reproduces_its_published_figure(timed):
    calibration = [r for r in RUNS if r.calibrates]
    assert {r.calibrates for r in calibration} >= {
        "STACK",
        "DEQUANT_BW_FRACTION",
        "INT8_BW_FRACTION",
        "NET_EFFICIENCY",
    }
    for run in calibration:
        assert ratio(timed, run.id) == pytest.approx(1, abs=0.05), run.id


def test_the_error_bands_prep_fit_prints_are_the_tables(timed):
    stats = regime_stats(
        (timed[r.id]["error_band"]["regime"], ratio(timed, r.id), r.calibrates is not None) for r in RUNS
    )
    for regime, band in BANDS.items():
        got = stats.get(regime)
        assert band.runs == (len(got.ratios) if got else 0), regime
        if got:
            assert (band.median, band.low, band.high) == (
                round(got.median, 2),
                round(got.low, 2),
                round(got.high, 2),
            ), regime
    for run in RUNS:  # and every timed run carries its regime's band
        assert timed[run.id]["error_band"]["low_ratio"] == BANDS[timed[run.id]["error_band"]["regime"]].low


def test_the_measured_h200_steps_and_llama2_gpu_hours_stay_within_25_percent(timed):
    for run_id in ("h200-llama2-7b-full", "h200-llama2-70b-qlora", "llama2-70b-pretraining"):
        assert abs(ratio(timed, run_id) - 1) < 0.25, run_id


def test_the_table_is_what_the_issue_asked_for():
    checked = [r for r in RUNS if not r.calibrates and not r.source.startswith("../shared")]
    assert len(checked) >= 12
    assert {r.hardware["gpu"].split("-")[0] for r in checked} >= {"a100", "h100"}
    methods = {r.recipe.get("adapter") or "full" for r in checked}
    assert methods >= {"full", "lora", "qlora"}
    assert {r.hardware["nodes"] > 1 for r in checked} == {True, False}
    for run in RUNS:  # each figure says where it was published
        assert re.search(r"https://|arXiv:\d{4}\.\d{4,5}|\.\./shared/notes/", run.source), run.id
        assert ("seconds" in run.published) != ("tokens_per_second" in run.published), run.id
