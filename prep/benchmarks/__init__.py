"""One module per benchmark, owning what is known of it: its local file layout (how `../shared/data` and a user's
copies lay it out) and how one of its records reads as a decontamination item. Decontamination
(prep/decontam), the eval-cost sizing (prep/sizing/evalcost.py), the offline lm-eval tasks (evals/tasks) and the
bench scripts all read benchmark files through these modules. A new benchmark is a module with an `item` function
(and, if it has a local layout, its readers) plus one line in BENCHMARKS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prep.benchmarks import arc, hellaswag, mmlu, truthfulqa

# a benchmark's record (a hub row or a local file's) -> (its question, the texts scanned for shared n-grams)
ItemOf = Callable[[dict[str, Any]], tuple[str, list[str]]]
BENCHMARKS: dict[str, ItemOf] = {
    "mmlu": mmlu.item,
    "hellaswag": hellaswag.item,
    "arc": arc.item,
    "truthfulqa": truthfulqa.item,
}
