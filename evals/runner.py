"""Score an lm-eval LM on the configured tasks, one `simple_evaluate` call per task so each task keeps
its own few-shot count and a failing task is recorded without losing the others.

Prompts are plain log-likelihood prompts without a chat template (`apply_chat_template=False`), the
Open LLM Leaderboard setting for MMLU and HellaSwag, whatever template the model was trained with.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import Any

from evals.spec import EvalSettings, TaskSpec
from evals.tasks import TASKS_DIR

LOG = logging.getLogger(__name__)
GROUP_AGGREGATION = "lm-eval group score (the group's aggregate_metric_list; mmlu: subtasks weighted by row count)"
# the parts of lm-eval's output kept in a report ("configs" and "samples" are left out: size)
RAW_KEYS = ("results", "groups", "group_subtasks", "n-shot", "n-samples", "versions", "higher_is_better")


def task_manager(settings: EvalSettings):
    """lm-eval's TaskManager with the extra task directories and, for the offline tasks, their data."""
    from lm_eval.tasks import TaskManager

    include = list(settings.include_path)
    metadata = None
    if settings.task_data_dir:
        include.append(str(TASKS_DIR))
        metadata = {"data_dir": settings.task_data_dir}
    return TaskManager(include_path=include or None, metadata=metadata)


def _leaves(name: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    children = group_subtasks.get(name)
    if not children:
        return [name]
    return [leaf for child in children for leaf in _leaves(child, group_subtasks)]


def summarise(spec: TaskSpec, raw: dict[str, Any], wall_time: float) -> dict[str, Any]:
    """The report entry for one task from lm-eval's output: metric, value, stderr, n-shot, samples."""
    results = raw["results"].get(spec.name)
    key = f"{spec.metric},none"
    if results is None or key not in results:
        available = sorted(k for k in (results or {}) if k != "alias")
        raise KeyError(f"{spec.name}: metric {key!r} not in lm-eval's results (has {available})")
    stderr = results.get(f"{spec.metric}_stderr,none")
    leaves = _leaves(spec.name, raw.get("group_subtasks", {}))
    samples = sum(raw["n-samples"][leaf]["effective"] for leaf in leaves if leaf in raw["n-samples"])
    group = leaves != [spec.name]
    leaf_values = [float(raw["results"][leaf][key]) for leaf in leaves if key in raw["results"].get(leaf, {})]
    return {
        "status": "ok",
        "metric": spec.metric,
        "value": float(results[key]),
        "stderr": None if stderr in (None, "N/A") else float(stderr),
        "num_fewshot": spec.num_fewshot,
        "aggregation": GROUP_AGGREGATION if group else "mean over rows",
        # the older harness's MMLU (Open LLM Leaderboard v1): the plain mean over the subjects
        **({"subtask_mean": sum(leaf_values) / len(leaf_values), "subtasks": len(leaf_values)} if group else {}),
        "samples": samples,
        "wall_time_s": round(wall_time, 3),
        "raw": plain({k: raw[k] for k in RAW_KEYS if k in raw}),
    }


def plain(obj: Any) -> Any:
    """lm-eval's output holds numpy scalars; make it plain JSON the way lm-eval writes its own files."""
    from lm_eval.utils import handle_non_serializable

    return json.loads(json.dumps(obj, default=handle_non_serializable))


def failure(spec: TaskSpec, exc: BaseException, wall_time: float = 0.0) -> dict[str, Any]:
    return {
        "status": "failed",
        "metric": spec.metric,
        "num_fewshot": spec.num_fewshot,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc, limit=-8)),
        "wall_time_s": round(wall_time, 3),
    }


def score(lm, settings: EvalSettings, manager=None) -> dict[str, dict[str, Any]]:
    """Run every task on `lm`; a task that raises is recorded with its error and the rest still run."""
    from lm_eval import simple_evaluate

    manager = manager if manager is not None else task_manager(settings)
    out: dict[str, dict[str, Any]] = {}
    for spec in settings.tasks:
        start = time.perf_counter()
        try:
            raw = simple_evaluate(
                model=lm,
                tasks=[spec.name],
                num_fewshot=spec.num_fewshot,
                limit=spec.limit or settings.limit,
                log_samples=False,
                apply_chat_template=False,
                task_manager=manager,
            )
            out[spec.name] = summarise(spec, raw, time.perf_counter() - start)
            LOG.info(
                "epoch_eval: %s %s=%.4f (%d rows, %.1f s)",
                spec.name,
                spec.metric,
                out[spec.name]["value"],
                out[spec.name]["samples"],
                out[spec.name]["wall_time_s"],
            )
        except Exception as exc:  # recorded in the report; the caller decides whether to stop
            out[spec.name] = failure(spec, exc, time.perf_counter() - start)
            LOG.error("epoch_eval: %s failed: %s", spec.name, out[spec.name]["error"])
    return out
