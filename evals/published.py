"""Which published numbers a run's scores can be compared with, and the numbers to beat.

The Open LLM Leaderboard (v1, 2023) scored MMLU 5-shot and HellaSwag 10-shot acc_norm with an older
lm-evaluation-harness (before 0.4), where MMLU was 57 separate `hendrycksTest-*` tasks and the
leaderboard's MMLU the plain mean of their accuracies. lm-eval 0.4's `mmlu` is a group whose score
weights each subject by its number of test rows (100 to 1,534 rows), so the two differ whenever subjects
score differently: reports carry both (`value` and `subtask_mean`).
"""

from __future__ import annotations

# Open LLM Leaderboard v1, percent: (MMLU 5-shot, HellaSwag 10-shot acc_norm)
LEADERBOARD_V1 = {
    "Llama-2-70B": (69.83, 87.33),
    "Platypus2-70B-instruct": (70.48, 87.94),
    "Tulu-2-DPO-70B": (69.84, 88.99),
}
MMLU = ("mmlu", "mmlu_local")
HELLASWAG = ("hellaswag", "hellaswag_local")
HARNESS_GAP = (
    "Known gaps between harness versions: the leaderboard's older harness and lm-eval 0.4 share MMLU's "
    "prompt (subject header, 'Answer:', letter choices) and HellaSwag's preprocessing, but MMLU's "
    "aggregation differs (plain subject mean vs row-weighted group, both shown), and few-shot sampling, "
    "batching and padding numerics may differ slightly; the 1-sigma sampling error of a full run is about 0.4 "
    "points on MMLU (14,042 rows) and 0.3 on HellaSwag (10,042 rows), so smaller differences from a "
    "published number are not evidence either way."
)


def _published(column: int) -> str:
    return ", ".join(f"{model} {scores[column]:.2f}" for model, scores in LEADERBOARD_V1.items())


def comparability(report: dict) -> list[str]:
    """One line per task saying which published numbers its score is comparable with, and why not."""
    lines = []
    limited = {name: n for name, n in (report.get("limit") or {}).items() if n is not None}
    for name, task in sorted(report["tasks"].items()):
        why_not = []
        if name in limited:
            why_not.append(f"rows limited to {limited[name]} per (sub)task")
        if report.get("chat_template"):
            why_not.append("scored with a chat template")
        if name in MMLU and (task.get("num_fewshot"), task["metric"]) != (5, "acc"):
            why_not.append("not 5-shot acc")
        if name in HELLASWAG and (task.get("num_fewshot"), task["metric"]) != (10, "acc_norm"):
            why_not.append("not 10-shot acc_norm")
        local = name.endswith("_local")
        if name in MMLU:
            target = (
                f"{name}: its 57-subject mean (column 'subject mean') is the Open LLM Leaderboard v1 MMLU "
                f"({_published(0)}); the lm-eval group score beside it compares with lm-eval >= 0.4 `mmlu` numbers"
                + (" (offline twin: only when its data directory holds the full test set)" if local else "")
            )
        elif name in HELLASWAG:
            target = f"{name}: acc_norm is the Open LLM Leaderboard v1 HellaSwag ({_published(1)})" + (
                " (offline twin: few-shot examples come from validation rows, on the hub from train)" if local else ""
            )
        else:
            target = f"{name}: no published reference here"
            why_not = []
        lines.append(f"{target}; NOT comparable here: {', '.join(why_not)}" if why_not else target)
    return lines
