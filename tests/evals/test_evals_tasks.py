"""The offline tasks in evals/tasks are lm-eval's own mmlu and hellaswag on local files: same subjects,
descriptions, groups, prompts, choices, few-shot rules and metrics; bad data fails naming file and row."""

from __future__ import annotations

from pathlib import Path

import lm_eval
import pytest
import yaml

from evals.tasks import TASKS_DIR

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"


def load(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=IgnoreFunctions)


class IgnoreFunctions(yaml.SafeLoader):
    """safe_load that keeps `!function x.y` as the string 'x.y'."""


IgnoreFunctions.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def test_mmlu_local_mirrors_lm_eval_mmlu():
    theirs_dir, ours_dir = LM_EVAL_TASKS / "mmlu/default", TASKS_DIR / "mmlu_local"
    theirs, ours = load(theirs_dir / "_default_template_yaml"), load(ours_dir / "_mmlu_local_template_yaml")
    for key in (
        "test_split",
        "fewshot_split",
        "fewshot_config",
        "output_type",
        "doc_to_text",
        "doc_to_choice",
        "doc_to_target",
        "metric_list",
        "metadata",
    ):
        assert ours[key] == theirs[key], key
    assert theirs["dataset_path"] == "cais/mmlu" and ours["custom_dataset"] == "!function utils.load_mmlu"
    subjects = sorted(theirs_dir.glob("mmlu_*.yaml"))
    assert len(subjects) == 57
    for path in subjects:
        t = load(path)
        o = load(ours_dir / path.name.replace("mmlu_", "mmlu_local_", 1))
        assert o["dataset_kwargs"] == {"subject": t["dataset_name"]}
        assert (o["description"], o["task_alias"]) == (t["description"], t["task_alias"])
        assert o["tag"] == t["tag"].replace("mmlu_", "mmlu_local_", 1)
    for path in theirs_dir.glob("_mmlu*.yaml"):
        t, o = load(path), load(ours_dir / path.name.replace("_mmlu", "_mmlu_local", 1))
        assert o["aggregate_metric_list"] == t["aggregate_metric_list"]
        assert o["task"] == [n.replace("mmlu_", "mmlu_local_", 1) for n in t["task"]]


def test_hellaswag_local_mirrors_lm_eval_hellaswag():
    theirs, ours = (
        load(LM_EVAL_TASKS / "hellaswag/hellaswag.yaml"),
        load(TASKS_DIR / "hellaswag_local/hellaswag_local.yaml"),
    )
    for key in (
        "output_type",
        "validation_split",
        "process_docs",
        "doc_to_text",
        "doc_to_target",
        "doc_to_choice",
        "metric_list",
        "metadata",
    ):
        assert ours[key] == theirs[key], key
    assert ours["training_split"] is None  # no train split offline: few-shot from validation, the row itself excluded


def test_prompts_are_lm_eval_prompts_on_the_real_rows(shared_data):
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(TASKS_DIR), metadata={"data_dir": str(shared_data)})
    tasks = get_task_dict(["mmlu_local_college_mathematics", "hellaswag_local"], manager)
    mmlu, hs = tasks["mmlu_local_college_mathematics"], tasks["hellaswag_local"]
    docs = list(mmlu.test_docs())
    assert len(docs) == 100 and len(list(mmlu.fewshot_docs())) == 5
    none_row = next(d for d in docs if "None" in d["choices"])  # kept as the string, not a missing value
    assert f"A. {none_row['choices'][0]}\n" in mmlu.doc_to_text(none_row)
    first = docs[0]
    assert mmlu.doc_to_text(first) == (
        f"{first['question'].strip()}\nA. {first['choices'][0]}\nB. {first['choices'][1]}"
        f"\nC. {first['choices'][2]}\nD. {first['choices'][3]}\nAnswer:"
    )
    assert mmlu.doc_to_choice(first) == ["A", "B", "C", "D"]
    hs_docs = list(hs.validation_docs())
    assert len(hs_docs) == 1000
    assert (
        hs_docs[0]["query"]
        == "Pole vault: Pole vault is a sport where you run with a pole and stop and swing your body. A few women"
    )
    assert hs.doc_to_target(hs_docs[0]) == 3


def test_bad_rows_fail_naming_file_row_and_field(tmp_path, shared_data):
    import importlib.util

    spec = importlib.util.spec_from_file_location("mmlu_utils", TASKS_DIR / "mmlu_local/utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    for split in ("test", "dev"):
        (tmp_path / "mmlu" / split).mkdir(parents=True)
        (tmp_path / "mmlu" / split / f"anatomy_{split}.csv").write_text(
            (shared_data / "mmlu" / split / f"anatomy_{split}.csv").read_text()
        )
    bad = tmp_path / "mmlu/test/anatomy_test.csv"
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",E"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"anatomy_test.csv line 4: field answer='E' is not an index 0-3"):
        utils.load_mmlu("anatomy", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"MMLU file missing: .*mmlu/test/virology_test.csv"):
        utils.load_mmlu("virology", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no data directory"):
        utils.load_mmlu("anatomy")
