"""The README's "five epochs of the default mixture" table: `prep fit --json` for each shipped 70B recipe on its
hardware, at a token count estimated from the real OpenOrca rows in ../shared/data (the hub, and so the full
mixture and the Llama-2 tokenizer, are out of reach here).

Tokens per row: the genuine OpenOrca GPT-4 sample rendered with the recipes' Llama-2-chat template, at
CHARS_PER_TOKEN characters per Llama token; rows: ROWS, the order of magnitude the default mixture keeps
(OpenOrca GPT-4 ~1M + GPT-3.5 capped at 800k, minus filters and dedup, + 143k Evol + 25k Platypus).

    python bench/runtime_table.py [--rows 1500000] [--price 2.0]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pyarrow.parquet as pq
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.cli import main  # noqa: E402
from prep.sizing.evalcost import CHARS_PER_TOKEN  # noqa: E402

FIXTURE_70B = REPO / "tests" / "fixtures" / "llama-2-70b-hf"  # Llama-2-70B's config.json, no weights
RECIPES = {
    "llama2-70b-merged.yml": ("a100-80gb", 8, 1),
    "llama2-70b-merged-multinode.yml": ("a100-80gb", 8, 4),
    "llama2-70b-merged-qlora.yml": ("a100-80gb", 1, 1),
}
TEMPLATE_CHARS = len("<s>[INST] <<SYS>>\n\n<</SYS>>\n\n [/INST]  </s>")


def openorca_tokens_per_row(shared: Path) -> float:
    table = pq.read_table(shared / "openorca" / "openorca_gpt4_sample.parquet").to_pylist()
    chars = [len(r["system_prompt"]) + len(r["question"]) + len(r["response"]) + TEMPLATE_CHARS for r in table]
    return sum(chars) / len(chars) / CHARS_PER_TOKEN


@click.command()
@click.option("--rows", default=1_500_000, show_default=True, help="Rows per epoch assumed for the default mixture.")
@click.option("--price", default=2.0, show_default=True, help="$ per A100-80GB GPU-hour for the cost column.")
@click.option("--shared", type=click.Path(path_type=Path), default=REPO.parent / "shared" / "data")
def run(rows: int, price: float, shared: Path) -> None:
    per_row = openorca_tokens_per_row(shared)
    tokens = rows * per_row
    print(f"tokens per epoch: {rows:,} rows x {per_row:.0f} tokens/row = {tokens:,.0f}\n")
    print(
        f"| recipe | hardware | steps / epoch | time / epoch | 5 epochs, evals included | GPU-hours | at ${price:g}/GPU-h "
        "| eval / epoch "
        "| 5 epochs within the model's error on published runs |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for recipe, (gpu, gpus, nodes) in RECIPES.items():
        args = ["fit", str(REPO / "recipes" / recipe), "--gpu-type", gpu, "--gpus", str(gpus), "--nodes", str(nodes)]
        args += ["--tokens-per-epoch", str(tokens), "--rows-per-epoch", str(rows)]
        args += ["--price-per-gpu-hour", str(price), "--json"]
        args += ["--base-model", str(FIXTURE_70B), "--ram", "2048", "--disk", "4000", "--run-dir", str(REPO)]
        result = CliRunner().invoke(main, args)
        if result.exit_code != 0:
            raise SystemExit(f"{recipe}: {result.output}")
        out = json.loads(result.stdout)
        t, ev = out["time"], out.get("evals") or {}
        band = t["error_band"]
        wall = t.get("wall_seconds", t["total_seconds"])  # with the time training waits for same_node evals
        gpu_hours = wall * gpus * nodes / 3600
        print(
            f"| `{recipe}` | {nodes} x {gpus} {gpu} | {t['steps_per_epoch']:,} | {t['seconds_per_epoch'] / 86400:.1f} days "
            f"| {wall / 86400:.0f} days | {gpu_hours:,.0f} | ${gpu_hours * price:,.0f} "
            f"| {ev.get('seconds_per_epoch', 0) / 60:.0f} min on {ev.get('gpus', '-')} GPU(s) "
            + (
                f"| {band['seconds_low'] / 86400:.0f}-{band['seconds_high'] / 86400:.0f} days ({band['regime']}, "
                f"{band['published_runs']} runs) |"
                if band["seconds_low"] is not None
                else f"| not bounded ({band['regime']}: {band['published_runs']} published run) |"
            )
        )


if __name__ == "__main__":
    run()
