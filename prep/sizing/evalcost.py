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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prep.benchmarks import hellaswag, mmlu

CHARS_PER_TOKEN = 4.0  # only when no tokenizer at hand: the usual English figure for BPE vocabularies


@dataclass(frozen=True)
class EvalTokens:
    task: str
    items: int
    requested: float  # tokens in all requests (context + continuation each)
    computed: float  # tokens the backend actually runs a forward over


def mmlu_tokens(root: Path, count: Callable[[list[str]], list[int]], limit: int | None, backend: str) -> EvalTokens:
    items = requested = computed = 0.0
    for subject in mmlu.subjects(root):
        shots = "".join(
            f"{mmlu.prompt(q)} {mmlu.LETTERS[q.answer]}\n\n"
            for q in mmlu.read_split(mmlu.split_path(root, subject, "dev"))[:5]
        )
        docs = mmlu.read_split(mmlu.split_path(root, subject, "test"))
        docs = docs[:limit] if limit else docs
        prefix = count([mmlu.header(subject) + shots])[0]
        questions = count([mmlu.prompt(q) for q in docs])
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
    items = hellaswag.read_full(root / hellaswag.FULL)
    queries = count([hellaswag.clean(f"{it.activity_label}: {it.ctx}") for it in items])
    endings = [count([" " + hellaswag.clean(e) for e in it.endings]) for it in items]
    gold = [q + e[it.label] + 2 for q, e, it in zip(queries, endings, items, strict=True)]  # + "\n\n"
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
