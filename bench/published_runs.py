"""The time model against published runs: every run of prep/sizing/published_runs.yml written as a recipe copy and
timed with `prep fit --json`, then predicted / published time per run and, per regime, the median and the range
over the runs that set no constant of the model (the README's error statement; prep/sizing/accuracy.py).

    python bench/published_runs.py [--recipes DIR]   # DIR: keep the recipe copies and model configs there
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.cli import main  # noqa: E402
from prep.sizing.accuracy import BANDS  # noqa: E402
from prep.sizing.published import load_runs, regime_stats  # noqa: E402


def hours(seconds: float) -> str:
    return f"{seconds / 3600:,.2f} h" if seconds >= 360 else f"{seconds:,.0f} s"


@click.command()
@click.option("--recipes", type=click.Path(file_okay=False, path_type=Path), help="Keep the recipe copies here.")
def run(recipes: Path | None) -> None:
    work = recipes or Path(tempfile.mkdtemp(prefix="published-runs-"))
    work.mkdir(parents=True, exist_ok=True)
    print("| run | hardware | regime | predicted | published | predicted / published | calibrates |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    table = []
    for r in load_runs():
        result = CliRunner().invoke(main, r.fit_args(work))
        try:
            timed = json.loads(result.stdout)["time"]
        except (ValueError, KeyError):
            raise SystemExit(f"{r.id}: prep fit gave no time: {result.output[-2000:]}") from None
        ratio = timed["total_seconds"] / r.published_seconds
        regime = timed["error_band"]["regime"]
        table.append((regime, ratio, r.calibrates is not None))
        hw = r.hardware
        print(
            f"| {r.id} | {hw['nodes']} x {hw['gpus_per_node']} {hw['gpu']} | {regime} | "
            f"{hours(timed['total_seconds'])} | {hours(r.published_seconds)} | {ratio:.2f} | {r.calibrates or ''} |"
        )
    print("\n| regime | runs | median | range | stated in prep/sizing/accuracy.py |")
    print("| --- | --- | --- | --- | --- |")
    for regime, stats in regime_stats(table).items():
        band = BANDS[regime]
        print(
            f"| {regime} | {len(stats.ratios)} | {stats.median:.2f} | {stats.low:.2f}-{stats.high:.2f} | "
            f"{band.median:.2f}, {band.low:.2f}-{band.high:.2f} ({band.runs} runs) |"
        )


if __name__ == "__main__":
    run()
