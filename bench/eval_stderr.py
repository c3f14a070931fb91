"""The sampling error behind README's "one standard error of a full run" figures: the binomial standard
error sqrt(p(1-p)/n) of an accuracy at each published Open LLM Leaderboard v1 score, with n the MMLU test
rows (counted from the local copy, which is the full test set) and HellaSwag's 10,042 validation rows
(the local file is a 1,000-row sample). Also the MMLU subject sizes, which make lm-eval 0.4's row-weighted
group score differ from the older harness's plain subject mean.

    python bench/eval_stderr.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from evals.published import LEADERBOARD_V1
from prep.benchmarks import mmlu

HELLASWAG_VALIDATION_ROWS = 10_042  # Rowan/hellaswag validation split, what lm-eval's hellaswag scores


def subject_sizes(data: Path) -> dict[str, int]:
    return {s: len(mmlu.read_split(mmlu.split_path(data, s, "test"))) for s in mmlu.subjects(data)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    sizes = subject_sizes(args.data)
    mmlu_rows = sum(sizes.values())
    print(
        f"MMLU: {len(sizes)} subjects, {mmlu_rows:,} test rows, {min(sizes.values())} to {max(sizes.values())} a subject"
    )
    print(f"HellaSwag: {HELLASWAG_VALIDATION_ROWS:,} validation rows")
    print("| model | MMLU | 1 s.e. | HellaSwag | 1 s.e. |")
    print("| --- | --- | --- | --- | --- |")
    for model, (mmlu_score, hellaswag_score) in LEADERBOARD_V1.items():
        se = [
            100 * math.sqrt(p / 100 * (1 - p / 100) / n)
            for p, n in ((mmlu_score, mmlu_rows), (hellaswag_score, HELLASWAG_VALIDATION_ROWS))
        ]
        print(f"| {model} | {mmlu_score:.2f} | {se[0]:.2f} | {hellaswag_score:.2f} | {se[1]:.2f} |")


if __name__ == "__main__":
    main()
