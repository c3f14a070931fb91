"""Tokens and time of the per-epoch MMLU 5-shot and HellaSwag 10-shot evals, counted from the benchmark files.

The requests are built as lm-eval 0.4 builds them (evals/tasks/*: lm-eval's mmlu and hellaswag prompts):
MMLU: the subject's description, the first 5 dev rows with their answers, the question, then " A".." D"
(4 log-likelihood requests sharing one context); HellaSwag: 10 other validation rows with their gold ending
(drawn at random, so the expected length is used), the cleaned query, then each of the 4 endings. The hf backend
runs one forward per MMLU question (one-token continuations share the context) and one per HellaSwag request;
vLLM's prefix cache computes a shared prefix once. Time: 2 FLOPs per parameter per computed token at the
training utilization of the eval GPUs (prefill is compute-bound like training).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHARS_PER_TOKEN = 4.0  # only when no tokenizer is at hand: the usual English figure for BPE vocabularies
HELLASWAG_FILE = "hellaswag/hellaswag_val_full.txt"  # 10,042 items, 6 lines each
MMLU_DIR = "mmlu"


@dataclass(frozen=True)
class EvalTokens:
    task: str
    items: int
    requested: float  # tokens in all requests (context + continuation each)
    computed: float  # tokens the backend actually runs a forward over


def _hellaswag_clean(text: str) -> str:
    """lm-eval's hellaswag `preprocess`: WikiHow bracket artifacts out."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub("\\[.*?\\]", "", text).replace("  ", " ")


def mmlu_tokens(root: Path, count: Callable[[list[str]], list[int]], limit: int | None, backend: str) -> EvalTokens:
    items = requested = computed = 0.0
    for test in sorted((root / MMLU_DIR / "test").glob("*_test.csv")):
        subject = test.name.removesuffix("_test.csv")

        def rows(path: Path) -> list[list[str]]:
            with path.open(newline="", encoding="utf-8") as f:
                return list(csv.reader(f))[1:]

        def text(r: list[str]) -> str:
            return f"{r[0].strip()}\nA. {r[1]}\nB. {r[2]}\nC. {r[3]}\nD. {r[4]}\nAnswer:"

        head = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"
        shots = "".join(
            f"{text(r)} {'ABCD'[int(r[5])]}\n\n" for r in rows(root / MMLU_DIR / "dev" / f"{subject}_dev.csv")[:5]
        )
        docs = rows(test)[:limit] if limit else rows(test)
        prefix = count([head + shots])[0]
        questions = count([text(r) for r in docs])
        items += len(docs)
        requested += sum(4 * (prefix + q + 1) for q in questions)
        # one forward per question (hf groups one-token continuations); vLLM also caches the shared 5-shot prefix
        computed += sum((q + 1) if backend == "vllm" else (prefix + q + 1) for q in questions) + (
            prefix if backend == "vllm" else 0
        )
    return EvalTokens("mmlu 5-shot", int(items), requested, computed)


def hellaswag_tokens(
    root: Path, count: Callable[[list[str]], list[int]], limit: int | None, backend: str
) -> EvalTokens:
    lines = (root / HELLASWAG_FILE).read_text(encoding="utf-8").splitlines()
    items = [lines[i : i + 6] for i in range(0, len(lines) - 5, 6)]
    queries = count([_hellaswag_clean(it[0]) for it in items])
    endings = [count([" " + _hellaswag_clean(e) for e in it[2:6]]) for it in items]
    gold = [q + e[int(it[1])] + 2 for q, e, it in zip(queries, endings, items, strict=True)]  # + "\n\n"
    shots = 10 * sum(gold) / len(gold)
    used = range(min(limit, len(items))) if limit else range(len(items))
    requested = sum(4 * (shots + queries[i]) + sum(endings[i]) for i in used)
    if backend == "vllm":
        computed = sum(shots + queries[i] + sum(endings[i]) for i in used)
    else:
        computed = requested
    return EvalTokens("hellaswag 10-shot", len(used), requested, computed)


def eval_tokens(data_dir: Path, epoch_eval: Mapping[str, Any], tokenizer: Any | None) -> tuple[list[EvalTokens], str]:
    """Tokens of the recipe's per-epoch tasks (mmlu*, hellaswag*); and how they were counted."""
    if tokenizer is not None:

        def count(texts: list[str]) -> list[int]:
            return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]

        how = f"counted with the {getattr(tokenizer, 'name_or_path', 'recipe')} tokenizer"
    else:

        def count(texts: list[str]) -> list[int]:
            return [max(1, round(len(t) / CHARS_PER_TOKEN)) for t in texts]

        how = f"estimated at {CHARS_PER_TOKEN:g} characters per token (no tokenizer at hand)"
    backend = str(epoch_eval.get("backend") or "hf")
    out = []
    for task in epoch_eval.get("tasks") or []:
        name = str(task.get("name", ""))
        limit = task.get("limit", epoch_eval.get("limit"))
        limit = int(limit) if limit else None
        if name.startswith("mmlu"):
            out.append(mmlu_tokens(data_dir, count, limit, backend))
        elif name.startswith("hellaswag"):
            out.append(hellaswag_tokens(data_dir, count, limit, backend))
    return out, how
