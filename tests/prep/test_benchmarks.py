"""prep/benchmarks: one module per benchmark owns its local layout; read on the real copies in ../shared/data as
decontamination, the eval-cost count, the offline lm-eval tasks and the bench scripts read them."""

from __future__ import annotations

import pytest

from prep.benchmarks import BENCHMARKS, hellaswag, mmlu


def test_mmlu_local_layout_is_the_full_test_set(shared_data):
    subjects = mmlu.subjects(shared_data)
    assert len(subjects) == 57 and subjects[0] == "abstract_algebra"
    sizes = {s: len(mmlu.read_split(mmlu.split_path(shared_data, s, "test"))) for s in subjects}
    assert sum(sizes.values()) == 14_042 and min(sizes.values()) == 100  # the published test set
    dev = mmlu.read_split(mmlu.split_path(shared_data, "anatomy", "dev"))
    assert len(dev) == 5 and all(0 <= q.answer <= 3 and len(q.choices) == 4 for q in dev)
    assert mmlu.prompt(dev[0]).endswith("\nAnswer:") and "\nD. " in mmlu.prompt(dev[0])


def test_a_malformed_mmlu_row_names_the_file_line_and_field(tmp_path):
    path = tmp_path / "x_test.csv"
    path.write_text("question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,2\nq,a,b,c,d,E\n")
    with pytest.raises(ValueError, match=r"x_test.csv line 3: field answer='E' is not an index 0-3"):
        mmlu.read_split(path)
    path.write_text("q,a,b\n")
    with pytest.raises(ValueError, match="header"):
        mmlu.read_split(path)


def test_hellaswag_layouts_agree(shared_data):
    full = hellaswag.read_full(shared_data / hellaswag.FULL)
    sample = hellaswag.read_sample(shared_data / hellaswag.SAMPLE)
    assert len(full) == 10_042 and len(sample) == 1000
    assert all(len(it.endings) == 4 and 0 <= it.label <= 3 for it in full)
    # a sample row's context and endings are one of the full file's items
    first = sample[0]
    ctx = f"{first['ctx_a']} {first['ctx_b']}".strip()
    match = [it for it in full if it.endings == tuple(first["endings"])]
    assert match and match[0].ctx.strip() == ctx and match[0].label == int(first["label"])
    with pytest.raises(ValueError, match="not a multiple of 6"):
        list(hellaswag.parse_full(["a: b", "1", "x"], "f.txt"))


def test_every_benchmark_reads_its_records_as_decontamination_items():
    records = {
        "mmlu": {"question": "Q?", "choice0": "a", "choice1": "b", "choice2": "c", "choice3": "d", "answer": "1"},
        "hellaswag": {"ctx_a": "A man", "ctx_b": "runs", "endings": ["1", "2", "3", "4"]},
        "arc": {"question": "Q?", "choices": {"text": ["a", "b"], "label": ["A", "B"]}},
        "truthfulqa": {"question": "Q?", "best_answer": "yes", "correct_answers": ["yes", "indeed"]},
    }
    assert set(records) == set(BENCHMARKS)
    got = {name: BENCHMARKS[name](r) for name, r in records.items()}
    assert got["mmlu"] == ("Q?", ["Q? a b c d"])
    assert got["hellaswag"] == ("A man runs", ["A man runs 1", "A man runs 2", "A man runs 3", "A man runs 4"])
    assert got["arc"] == ("Q?", ["Q? a b"]) and got["truthfulqa"] == ("Q?", ["Q?", "Q? yes", "Q? indeed"])
