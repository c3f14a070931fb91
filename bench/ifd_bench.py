"""What the IFD scorer (prep/select/ifd.py) does with SmolLM2-135M-Instruct (`make models`) on real rows: 100
short OpenOrca rows (question + answer under 700 characters, a seeded sample) plus 12 others whose answers were
swapped between their prompts (misaligned on purpose).

    python bench/ifd_bench.py [--model .cache/models/SmolLM2-135M-Instruct] [--real 100] [--swapped 12]

Prints the IFD distribution of both sets, how they rank, the scoring speed (rows/s, this machine's CPU, batch
16), and what `select` keeps at a 50% row budget with `scorer: {kind: ifd}` for each `prefer`: swapped rows
with IFD >= 1 (dropped as misaligned) and below 1, and real rows. The builds reuse the IFD computed once per
(instruction, answer) text; everything else is the real step."""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from prep.config import MixtureConfig  # noqa: E402
from prep.pipeline import build  # noqa: E402
from prep.rows import Row  # noqa: E402
from prep.select import ifd  # noqa: E402


def sample(data: Path, real: int, swapped: int, max_chars: int = 700) -> tuple[list[dict], list[dict]]:
    """`real` short OpenOrca records (question + answer under `max_chars`), and `swapped` others, each with the
    next one's answer; a seeded choice."""
    records = [orjson.loads(x) for x in (data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()]
    short = [r for r in records if len(r["question"]) + len(r["response"]) < max_chars]
    random.Random(0).shuffle(short)
    extra = short[real : real + swapped]
    moved = [
        {**r, "id": f"swapped-{r['id']}", "response": extra[(i + 1) % swapped]["response"]} for i, r in enumerate(extra)
    ]
    return short[:real], moved


def as_row(record: dict) -> Row:
    """The row prep's openorca adapter makes of a record (a system turn when its system prompt is not blank)."""
    system = [{"from": "system", "value": record["system_prompt"]}] if record["system_prompt"].strip() else []
    turns = [*system, {"from": "human", "value": record["question"]}, {"from": "gpt", "value": record["response"]}]
    return Row(record["id"], "orca", None, "gpt-4", turns)


def memoize_scores() -> None:
    """IFD per (instruction, answer) computed once across the builds of this script."""
    cache: dict[tuple[str, str], float] = {}
    score = ifd.IfdScorer.score

    def cached(self: ifd.IfdScorer, pairs: list[tuple[str, str]]) -> np.ndarray:
        todo = [p for p in dict.fromkeys(pairs) if p not in cache]
        if todo:
            cache.update(zip(todo, score(self, todo).tolist(), strict=True))
        return np.array([cache[p] for p in pairs])

    ifd.IfdScorer.score = cached  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(REPO / ".cache/models/SmolLM2-135M-Instruct"))
    parser.add_argument("--real", type=int, default=100)
    parser.add_argument("--swapped", type=int, default=12)
    parser.add_argument("--data", default=str(REPO.parent / "shared/data"))
    args = parser.parse_args()
    real, swapped = sample(Path(args.data), args.real, args.swapped)

    scorer = ifd.IfdScorer.load(args.model, "cpu", 16, 1024)
    rows = [ifd.instruction_answer(as_row(r)) for r in real + swapped]
    start = time.perf_counter()
    values = scorer.score(rows)
    seconds = time.perf_counter() - start
    a, b = values[: len(real)], values[len(real) :]
    print(
        f"IFD with {Path(args.model).name}: {len(rows)} rows in {seconds:.1f} s = {len(rows) / seconds:.2f} rows/s on CPU"
    )
    print(
        f"real ({len(real)}): p0 {np.nanmin(a):.3f}, p10/p50/p90 {np.round(np.nanpercentile(a, [10, 50, 90]), 3).tolist()}, max {np.nanmax(a):.3f}, >= 1: {int((a >= 1).sum())}, no IFD: {int(np.isnan(a).sum())}"
    )
    print(f"swapped ({len(swapped)}): {np.round(np.sort(b), 3).tolist()}, >= 1: {int((b >= 1).sum())}")
    print(f"real rows below every swapped one: {int((a < np.nanmin(b)).sum())} of {len(real)}")

    memoize_scores()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "rows.jsonl"
        source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in real + swapped))
        by_id = {f"orca/{r['id']}": v for r, v in zip(real + swapped, values, strict=True)}
        for prefer in ("aligned", "difficult"):
            config = MixtureConfig.model_validate(
                {
                    "sources": [{"name": "orca", "format": "openorca", "path": str(source)}],
                    "curation": {
                        "steps": ["select"],
                        "select": {
                            "budget": {"rows": (len(real) + len(swapped)) // 2},
                            "scorer": {"kind": "ifd", "model": args.model, "device": "cpu", "prefer": prefer},
                        },
                    },
                }
            )
            build(config, Path(tmp) / "out.jsonl", progress=False, workers=0)
            kept = [orjson.loads(x)["id"] for x in (Path(tmp) / "out.jsonl").read_bytes().splitlines()]
            moved = [i for i in kept if i.startswith("orca/swapped-")]
            print(
                f"select, 50% row budget ({(len(real) + len(swapped)) // 2}), prefer {prefer}: keeps "
                f"{sum(by_id[i] >= 1 for i in moved)} of {int((b >= 1).sum())} swapped rows with IFD >= 1, "
                f"{sum(by_id[i] < 1 for i in moved)} of {int((b < 1).sum())} swapped rows below 1, "
                f"{len(kept) - len(moved)} of {len(real)} real rows"
            )


if __name__ == "__main__":
    main()
