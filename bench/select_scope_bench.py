"""Which rows `select` keeps per source when its scores are compared across sources (`score_scope: corpus`) or
ranked within each source (`source`): the demo mixture's sources (prep/mixtures/demo.yml, its steps up to the
dedups, then `select`), at a row budget and at a token budget of the same share of what dedup left.

    python bench/select_scope_bench.py [--share 0.36] [--tokenizer .cache/models/SmolLM2-135M-Instruct]

Prints per source the share of its deduplicated rows kept, the variety index after selection (effective number
of prompt clusters), and the mean quality score (the signals of prep/select/score.py, the same in both
scopes) of the kept rows per source and overall."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.config import MixtureConfig  # noqa: E402
from prep.pipeline import build  # noqa: E402


def config(data: Path, select: dict, tokenizer: str | None) -> MixtureConfig:
    raw = yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text())
    for entry in [*raw["sources"], *raw["curation"]["decontam"]["benchmarks"]]:
        entry["path"] = str(data / entry["path"].removeprefix("../shared/data/"))
    raw["curation"]["steps"] = [s for s in raw["curation"]["steps"] if s != "mixture"]
    raw["curation"]["select"] = select
    raw["curation"].pop("mixture", None)
    if tokenizer:
        raw["curation"]["tokenizer"] = tokenizer
    return MixtureConfig.model_validate(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--share", type=float, default=0.36, help="budget as a share of the rows (tokens) dedup left")
    parser.add_argument("--tokenizer", default=str(REPO / ".cache/models/SmolLM2-135M-Instruct"))
    parser.add_argument("--data", default=str(REPO.parent / "shared/data"))
    args = parser.parse_args()
    data = Path(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        pool = build(config(data, {}, args.tokenizer), Path(tmp) / "pool.jsonl", progress=False)["steps"]["select"]
        budgets = {
            "rows": round(args.share * pool["rows_before"]),
            "tokens": round(args.share * pool["tokens_before"]),
        }
        print(f"after dedup: {pool['rows_before']:,} rows, {pool['tokens_before']:,} tokens (chat template)")
        for unit, amount in budgets.items():
            for scope in ("corpus", "source"):
                select = {"budget": {unit: amount}, "score_scope": scope}
                manifest = build(config(data, select, args.tokenizer), Path(tmp) / "out.jsonl", progress=False)
                report = manifest["steps"]["select"]
                kept = ", ".join(
                    f"{name} {s['rows_after'] / max(s['rows_before'], 1):.0%} ({s['rows_after']}/{s['rows_before']})"
                    for name, s in report["per_source"].items()
                )
                print(
                    f"{unit} budget {amount:,}, score_scope {scope}: kept {kept}; variety "
                    f"{report['variety_before']:.2f} -> {report['variety_after']:.2f}; mean score "
                    f"{report['scores_before']['mean']:.3f} -> {report['scores_after']['mean']:.3f}; "
                    f"warnings: {manifest['cuts']['warnings'] or 'none'}"
                )


if __name__ == "__main__":
    main()
