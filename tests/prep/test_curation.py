"""Curation on the real samples in ../shared/data: quality filters, language, decontamination, dedup, mixture."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from conftest import REPO, with_shared_paths
from support.builds import curate

from prep.benchmarks import mmlu
from prep.cli import main
from prep.config import MixtureConfig
from prep.decontam.filter import Decontam, DecontamConfig
from prep.decontam.references import read_hellaswag_txt
from prep.errors import PrepError
from prep.filters.boilerplate import AiIdentity, Refusal
from prep.filters.language import Language, LanguageConfig
from prep.filters.truncated import Truncated, TruncatedConfig
from prep.pipeline import manifest_path
from prep.rows import Row
from prep.spill import Spill
from prep.step import CONTEXT, Context, Stats
from prep.steps import STATS
from prep.text import words


def sample_rows(shared_data: Path) -> list[Row]:
    """All 1,675 rows of the three samples, as the adapters shape them (no curation)."""
    rows = [
        Row(
            f"orca/{r['id']}",
            "orca",
            r["id"].split(".")[0],
            "gpt-4",
            [
                {"from": "system", "value": r["system_prompt"]},
                {"from": "human", "value": r["question"]},
                {"from": "gpt", "value": r["response"]},
            ],
        )
        for r in map(orjson.loads, (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines())
    ]
    evol = orjson.loads((shared_data / "evol_instruct/evol_instruct_v2_layout.json").read_bytes())
    rows += [Row(f"evol/{r['idx']}", "evol", None, None, r["conversations"]) for r in evol]
    plat = pq.read_table(shared_data / "platypus/open_platypus_layout.parquet").to_pylist()
    rows += [
        Row(
            f"plat/{i}",
            "plat",
            None,
            None,
            [{"from": "human", "value": f"{r['instruction']}\n\n{r['input']}"}, {"from": "gpt", "value": r["output"]}],
        )
        for i, r in enumerate(plat)
    ]
    return rows


def chat(prompt: str, answer: str, rid: str = "x") -> Row:
    return Row(rid, "t", None, None, [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}])


def boilerplate(row: Row) -> str | None:
    """The refusal then the ai_identity filter, as `quality` lists them: the first drop reason, or None."""
    verdict = Refusal().check(row) or AiIdentity().check(row)
    return verdict.reason if verdict else None


def benchmarks(shared_data: Path) -> list[dict]:
    return [
        {"name": "mmlu", "path": str(shared_data / "mmlu/test")},
        {"name": "hellaswag", "path": str(shared_data / "hellaswag/hellaswag_val_full.txt")},
    ]


@pytest.fixture(scope="module")
def decontam(shared_data) -> Decontam:
    return Decontam(DecontamConfig.model_validate({"benchmarks": benchmarks(shared_data)}))


# --- quality -------------------------------------------------------------------------------------------


def test_identity_filter_catches_vicuna_answers_and_spares_words_containing_model_names(shared_data):
    rows = [r for r in sample_rows(shared_data) if r.source == "evol"]
    check = boilerplate
    flagged = [r for r in rows if check(r) == "ai_identity"]
    # FastChat's dummy conversations: every one naming Vicuna/LMSYS as the speaker is caught
    vicuna = [r for r in rows if any(k in " ".join(r.turns("gpt")) for k in ("I am Vicuna", "My name is Vicuna"))]
    assert len(vicuna) > 20 and set(map(id, vicuna)) <= set(map(id, flagged))
    assert 250 <= len(flagged) <= 300
    answer = rows[0].turns("gpt")[-1]
    assert check(chat("q", "Napalm was used in the war; a palm tree survived. OpenAI released a paper.")) is None
    assert check(chat("q", f"As an AI language model, I can't. {answer}")) == "ai_identity"
    assert check(chat("q", "I am PaLM, here to help.")) == "ai_identity"
    assert check(chat("q", "I'm sorry, but I cannot help with that request.")) == "refusal"


def test_boilerplate_windows_give_the_whole_answer_verdicts(shared_data):
    """The regexes run only near the hints: the same verdict as searching every whole answer, on all sample
    answers and on boilerplate planted at every distance from other hints and from the answer's ends."""
    from prep.filters.boilerplate import AI_IDENTITY, MAX_MATCH, REFUSAL

    check = boilerplate

    def whole(answer: str) -> str | None:
        return "refusal" if REFUSAL.search(answer) else "ai_identity" if AI_IDENTITY.search(answer) else None

    answers = [t for r in sample_rows(shared_data) for t in r.turns("gpt")]
    rng = random.Random(0)
    phrases = [
        "As an AI language model",
        "as a language models",
        "I'm sorry, but I cannot",
        "trained by OpenAI",
        "I am ChatGPT",
        "I am GPT-45",
        "my knowledge cutoff",
        "the model",
        "a palm tree",
        "can't help with that",
    ]
    for _ in range(3000):
        words_ = rng.choice(answers).split(" ")[:80]
        for _ in range(rng.randint(1, 3)):
            words_.insert(rng.randint(0, len(words_)), rng.choice(phrases))
        gap = " " * rng.randint(0, 2 * MAX_MATCH)
        answers.append(rng.choice(["", "model "]) + gap + " ".join(words_) + rng.choice(["", "s", "."]))
    verdicts = Counter()
    for answer in answers:
        verdict = check(chat("q", answer))
        assert verdict == whole(answer), answer[:120]
        verdicts[verdict] += 1
    assert verdicts["refusal"] > 300 and verdicts["ai_identity"] > 300 and verdicts[None] > 1500


def test_truncated_answers_are_caught_and_whole_ones_survive(shared_data):
    rows = sample_rows(shared_data)
    check = Truncated(TruncatedConfig()).check
    survivors = [r for r in rows if check(r) is None]
    assert len(rows) - len(survivors) <= 5  # false positives on whole answers: titles without a full stop
    cuts = []
    for r in survivors:
        words_ = r.conversations[-1]["value"].split(" ")
        text = " ".join(words_[: len(words_) * 2 // 3]).rstrip(".,;:!?\n ")  # cut mid-sentence
        if len(text.rsplit("\n", 1)[-1].split()) >= 15 and len(text.split()) >= 25:  # inside a paragraph
            cuts.append(text)
    assert len(cuts) > 300
    # most are caught; the rest end inside a numbered list item, which the filter leaves alone by design
    assert sum(check(chat("q", t)) is not None for t in cuts) >= 0.8 * len(cuts)


def test_language_filter_on_real_text(shared_data):
    rows = sample_rows(shared_data)
    check = Language(LanguageConfig()).check
    dropped = [r.id for r in rows if check(r)]
    assert len(dropped) / len(rows) < 0.005  # the samples are English but for a few translation tasks
    german = next(r for r in rows if r.id == "orca/flan.744651").turns("human")[0].split("\n")[0]
    verdict = check(chat(german, german))
    assert verdict is not None and verdict.reason == "not_en" and verdict.detail.startswith("de ")


# --- decontamination ----------------------------------------------------------------------------------


def drop(decontam: Decontam, row: Row) -> str | None:
    """As the pipeline does: the check (in a worker), then the booking of a drop (in the main process)."""
    verdict = decontam.check(row)
    if verdict:
        decontam.book(row, verdict)
    return verdict.reason if verdict else None


def test_benchmark_items_pasted_or_edited_are_caught(shared_data, decontam):
    items = mmlu.read_split(mmlu.split_path(shared_data, "astronomy", "test"))
    rng = random.Random(0)
    caught = 0
    long_items = [q for q in items if len(words(q.question)) >= 14][:40]
    for q in long_items:
        # pasted into an instruction with lettered options, case and punctuation changed
        prompt = (
            f"Answer the following exam question.\n\n{q.question.upper().replace(',', '')}\n"
            + "\n".join(f"{letter}) {c}" for letter, c in zip(mmlu.LETTERS, q.choices, strict=True))
            + "\nAnswer:"
        )
        caught += drop(decontam, chat(prompt, "B")) == "decontam_mmlu"
    assert caught == len(long_items)
    short = next(q.question for q in items if 5 <= len(words(q.question)) < 10)
    assert drop(decontam, chat(f"{short}  ", "no idea")) == "decontam_mmlu"  # exact, after normalization
    assert drop(decontam, chat(f"Please help.\n{short}\nThanks", "ok")) == "decontam_mmlu"  # on its own line

    hella = list(read_hellaswag_txt(shared_data / "hellaswag/hellaswag_val_full.txt"))
    for item in rng.sample(hella, 20):
        story = f"{item['ctx']} {item['endings'][0]}"
        assert drop(decontam, chat("Continue the story.", f"Sure! {story} The end.")) == "decontam_hellaswag"
    report = decontam.report()
    assert report["rows_dropped"]["mmlu"] >= len(long_items) + 2 and report["rows_dropped"]["hellaswag"] == 20
    assert any(k.startswith("astronomy_test.csv:") for k in report["hits"]["mmlu"])


def test_decontam_false_positive_rate_on_clean_samples(shared_data, decontam):
    rows = sample_rows(shared_data)
    hits = [r.id for r in rows if decontam.check(r)]
    assert hits == []  # the README's figure: 0 of the 1,675 sample rows against all MMLU test and HellaSwag val


def test_benchmark_source_errors_name_the_file(tmp_path):
    bad = tmp_path / "hs.txt"
    bad.write_text("Label: ctx\nnot a label\na\nb\nc\nd\n")
    with pytest.raises(PrepError, match=r"hs.txt line 1"):
        Decontam(DecontamConfig.model_validate({"benchmarks": [{"name": "hellaswag", "path": str(bad)}]}))
    with pytest.raises(ValueError, match=r"decontam\.benchmarks is empty"):
        MixtureConfig.model_validate(
            {"sources": [{"name": "a", "format": "openorca", "path": "x"}], "curation": {"steps": ["decontam"]}}
        )


# --- dedup and mixture through `prep build` ----------------------------------------------------------


def test_exact_duplicates_keep_gpt4_then_longer_response(tmp_path, shared_data):
    orca = [orjson.loads(x) for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()]
    copy = tmp_path / "copy.jsonl"  # the same questions, reformatted, as GPT-3.5 answers (longer ones)
    copy.write_bytes(
        b"".join(
            orjson.dumps({**r, "question": "  " + r["question"].lower() + " !", "response": r["response"] + " More."})
            + b"\n"
            for r in orca[:300]
        )
    )
    shorter = tmp_path / "shorter.jsonl"  # GPT-4 again, with shorter answers
    longer_than_20 = [r for r in orca[300:] if len(r["response"]) > 20][:100]
    shorter.write_bytes(b"".join(orjson.dumps({**r, "response": r["response"][:20]}) + b"\n" for r in longer_than_20))
    rows, manifest, dropped = curate(
        tmp_path,
        [
            {"name": "gpt35", "format": "openorca", "path": str(copy), "teacher": "gpt-3.5"},
            {"name": "short", "format": "openorca", "path": str(shorter), "teacher": "gpt-4"},
            {"name": "gpt4", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")},
        ],
        {"steps": ["exact_dedup"]},
    )
    assert manifest["sources"]["gpt35"]["kept"] == 0  # every copy lost to the GPT-4 original
    assert manifest["sources"]["short"]["kept"] == 0  # same teacher: the longer response wins
    ids = Counter(r["id"].split("/")[1] for r in rows)
    assert set(ids.values()) == {1}  # one copy of each question
    # the sample's own templated duplicates ("Come up with a question ... answer: yes") went too
    assert manifest["sources"]["gpt4"]["dropped"] == {"exact_duplicate": 8}
    assert {d["reason"] for d in dropped} == {"exact_duplicate"} and len(dropped) == 408


def grams3(text: str) -> set:
    w = words(text)
    return {tuple(w[i : i + 3]) for i in range(max(1, len(w) - 2))}


def jaccard(x: set, y: set) -> float:
    return len(x & y) / len(x | y)


def test_near_duplicates_across_sources_and_precision(tmp_path, shared_data):
    orca = [orjson.loads(x) for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()]
    rng = random.Random(0)
    planted = []
    for r in orca:
        w = r["question"].split(" ")
        if len(w) < 60:
            continue
        i = rng.randrange(len(w))  # one word replaced: Jaccard about 0.9 on long prompts
        w[i] = "zebra"
        planted.append({**r, "question": " ".join(w), "response": r["response"] * 2})
    copy = tmp_path / "near.jsonl"
    copy.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in planted))
    rows, manifest, dropped = curate(
        tmp_path,
        [
            {"name": "gpt4", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")},
            {"name": "gpt35", "format": "openorca", "path": str(copy), "teacher": "gpt-3.5"},
        ],
        {"steps": ["near_dedup"]},
    )
    near = [d for d in dropped if d["reason"] == "near_duplicate"]
    planted_dropped = [d for d in near if d["source"] == "gpt35"]
    by_id = {o["id"]: o for o in orca}
    true_pairs = sum(jaccard(grams3(p["question"]), grams3(by_id[p["id"]]["question"])) >= 0.8 for p in planted)
    assert len(planted_dropped) >= 0.95 * true_pairs and true_pairs > 100  # recall on planted pairs
    # precision: each dropped row has another row whose prompt really is >= 0.8 similar (brute force)
    prompts = [grams3(r["conversations"][-2]["value"]) for r in rows + [d["row"] for d in near]]
    for i in range(len(rows), len(prompts)):
        assert max(jaccard(prompts[i], k) for j, k in enumerate(prompts) if j != i) >= 0.8
    assert manifest["steps"]["near_dedup"]["verified_pairs"] >= len(near)
    # each record names the row kept in its place and their Jaccard; a planted copy, mostly its GPT-4 original
    # (the others: originals that are near copies of each other, templated tasks)
    kept_ids = {r["id"] for r in rows}
    for d in near:
        kept = d["detail"].removeprefix("duplicate of ").split(" (kept), jaccard ")[0]
        assert kept in kept_ids, d["detail"]
        assert float(d["detail"].split("jaccard ")[1].split(";")[0]) >= 0.8 or "joined to it through" in d["detail"]
    own = sum(
        d["detail"].startswith(f"duplicate of gpt4/{d['row']['id'].removeprefix('gpt35/')} ") for d in planted_dropped
    )
    assert own >= 0.9 * len(planted_dropped)


def test_mixture_caps_weights_and_strata(tmp_path, shared_data):
    sources = [
        {"name": "orca", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")},
        {"name": "plat", "format": "platypus", "path": str(shared_data / "platypus/open_platypus_layout.parquet")},
    ]
    curation = {
        "steps": ["mixture"],
        "mixture": {
            "sources": {"plat": {"cap": 50}},
            "strata": [{"sources": ["orca"], "by": ["subsource"], "max_share": 0.25}],
        },
    }
    rows, manifest, _ = curate(tmp_path, sources, curation)
    assert manifest["sources"]["plat"] == {"read": 175, "kept": 50, "dropped": {"mixture_source_cap": 125}}
    sub = Counter(r["subsource"] for r in rows if r["source"] == "orca")
    assert max(sub.values()) <= 0.25 * sum(sub.values()) + 1e-9 and len(sub) == 4
    assert manifest["sources"]["orca"]["dropped"] == {"mixture_stratum_cap": 1000 - sum(sub.values())}
    assert manifest["mix_shares"]["plat"] == round(50 / len(rows), 4)
    again, _, _ = curate(tmp_path, sources, curation, name="again.jsonl")
    assert again == rows  # deterministic for a seed, shuffled
    assert [r["source"] for r in rows[:60]] != sorted(r["source"] for r in rows[:60])
    other, _, _ = curate(tmp_path, sources, curation, seed=2, name="other.jsonl")
    assert {r["id"] for r in other} != {r["id"] for r in rows}

    weighted = {"steps": ["mixture"], "mixture": {"sources": {"orca": {"weight": 3}, "plat": {"weight": 1}}}}
    rows, manifest, _ = curate(tmp_path, sources, weighted, name="w.jsonl")
    assert manifest["sources"]["plat"]["kept"] == 175 and manifest["sources"]["orca"]["kept"] == 525
    assert manifest["mix_shares"] == {"orca": 0.75, "plat": 0.25}


def test_step_order_is_validated():
    from prep.steps import STEPS

    assert all(cls.name == name for name, cls in STEPS.items())  # each registered under its own name
    src = [{"name": "a", "format": "openorca", "path": "x"}]
    for steps, msg in [
        (["exact_dedup", "quality"], "must come before"),
        (["mixture", "near_dedup"], "last"),
        (["quality", "typo"], "unknown steps"),
        (["quality", "truncated"], "listed twice"),
    ]:
        with pytest.raises(ValueError, match=msg):
            MixtureConfig.model_validate({"sources": src, "curation": {"steps": steps}})
    for curation, msg in [
        ({"near_dedupe": {}}, "unknown curation key 'near_dedupe'"),
        ({"truncated": {"min_word": 3}}, r"curation\.truncated(.|\n)*min_word"),
        ({"quality": {"truncated": False}}, r"curation\.quality: `quality` stands for the steps"),
        ({"language": {"backend": "cld3"}}, r"curation\.language(.|\n)*backend"),
        ({"decontam": {"benchmarks": [{"name": "gsm8k", "path": "x"}]}}, "unknown benchmark 'gsm8k'"),
    ]:
        with pytest.raises(ValueError, match=msg):
            MixtureConfig.model_validate({"sources": src, "curation": curation})
    with pytest.raises(ValueError, match="unknown format 'orca'"):
        MixtureConfig.model_validate({"sources": [{"name": "a", "format": "orca", "path": "x"}]})
    steps = MixtureConfig.model_validate({"sources": src, "curation": {"steps": ["quality", "mixture"]}}).curation.steps
    assert steps == ["empty_turn", "refusal", "ai_identity", "truncated", "length", "mixture"]
    with pytest.raises(ValueError, match="not configured"):
        MixtureConfig.model_validate({"sources": src, "curation": {"mixture": {"sources": {"b": {"cap": 1}}}}})


# --- the demo mixture end to end ----------------------------------------------------------------------


def demo_config(tmp_path: Path, shared_data: Path, **curation) -> Path:
    config = with_shared_paths(yaml.safe_load((REPO / "prep/mixtures/demo.yml").read_text()), shared_data)
    config["curation"].update(curation)
    path = tmp_path / "demo.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_demo_build_manifest_arithmetic_and_decontam_report(tmp_path, shared_data):
    # a contaminated copy of the platypus sample: three rows carry MMLU/HellaSwag items
    plat = pq.read_table(shared_data / "platypus/open_platypus_layout.parquet").to_pylist()
    hella = next(read_hellaswag_txt(shared_data / "hellaswag/hellaswag_val_full.txt"))  # a short item: whole match
    questions = mmlu.read_split(mmlu.split_path(shared_data, "virology", "test"))
    question = next(q.question for q in questions if len(words(q.question)) >= 15)
    plat[3]["instruction"] = f"Answer this: {question}"
    plat[7]["output"] = f"{hella['ctx']} {hella['endings'][2]}"
    plat[9]["input"] = question.lower()
    contaminated = tmp_path / "plat.parquet"
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(plat), contaminated)
    config = yaml.safe_load(demo_config(tmp_path, shared_data).read_text())
    config["sources"][2]["path"] = str(contaminated)
    path = tmp_path / "mix.yml"
    path.write_text(yaml.safe_dump(config))

    out, dropped = tmp_path / "out.jsonl", tmp_path / "dropped.jsonl"
    result = CliRunner().invoke(
        main, ["build", "--config", str(path), "--out", str(out), "--dropped", str(dropped), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    m = orjson.loads(manifest_path(out).read_bytes())
    for s in m["sources"].values():
        assert s["read"] == s["kept"] + sum(s["dropped"].values())
    assert m["totals"]["read"] == 1675 and m["rows"] == m["totals"]["kept"] == len(out.read_bytes().splitlines())
    assert len(dropped.read_bytes().splitlines()) == sum(m["totals"]["dropped"].values())
    assert m["sources"]["platypus"]["dropped"]["decontam_mmlu"] == 2
    assert m["sources"]["platypus"]["dropped"]["decontam_hellaswag"] == 1
    assert m["steps"]["decontam"]["rows_dropped"] == {"mmlu": 2, "hellaswag": 1}  # nothing else in the samples
    assert m["sources"]["evol_instruct"]["dropped"]["ai_identity"] >= 250
    assert abs(sum(m["mix_shares"].values()) - 1) < 1e-3
    assert m["lengths"]["unit"] == "chars" and m["lengths"]["platypus"]["rows"] == m["sources"]["platypus"]["kept"]

    report = CliRunner().invoke(main, ["decontam-report", str(manifest_path(out))])
    assert report.exit_code == 0, report.output
    assert "virology_test.csv" in report.output and "hellaswag_val_full.txt:1" in report.output
    assert "platypus/3" in report.output


class TeacherCounts(Stats):
    """A statistic as a user would add one: per-row work in the workers, a measure of the rows kept."""

    name = "teachers"

    def __init__(self, config: object = None, context: Context = CONTEXT) -> None:
        super().__init__(config, context)
        self.teachers: list[str] = []
        self.counts: Counter[str] = Counter()

    def featurize(self, rows: list[Row]) -> list[str]:
        return [row.teacher or "unknown" for row in rows]

    def observe(self, rows: list[Row], features: list[str]) -> None:
        self.teachers += features

    def measure(self, kept: np.ndarray, spill: Spill) -> None:
        self.counts = Counter(self.teachers[i] for i in np.flatnonzero(kept))

    def report(self) -> dict[str, int]:
        return dict(self.counts)


def test_a_statistic_is_one_registered_step_that_drops_nothing(tmp_path, shared_data, monkeypatch):
    """Registered in STATS, a statistic runs in every build after the corpus steps, on the rows they kept
    (screened in the worker processes like any step), and reports under its name; the output is unchanged."""
    sources = [
        {"name": "orca", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")},
        {
            "name": "evol",
            "format": "evol_instruct",
            "path": str(shared_data / "evol_instruct/evol_instruct_v2_layout.json"),
        },
    ]
    curation = {"steps": ["quality", "exact_dedup", "mixture"], "mixture": {"sources": {"orca": {"cap": 300}}}}
    before, plain, _ = curate(tmp_path / "plain", sources, curation)
    monkeypatch.setitem(STATS, "teachers", TeacherCounts)
    rows, manifest, dropped = curate(tmp_path / "measured", sources, curation)
    assert rows == before and manifest["totals"] == plain["totals"] and "teachers" not in plain
    assert manifest["teachers"] == Counter(r["teacher"] or "unknown" for r in rows)
    assert sum(manifest["teachers"].values()) == manifest["rows"] < manifest["totals"]["read"]
    assert {d["reason"] for d in dropped} >= {"mixture_source_cap"}


def test_lengths_and_the_card_count_every_turn(tmp_path):
    """A row's length is its system and user turns plus all its assistant turns, as the card says: this
    two-exchange row's final answer alone is under min_response_chars, its answers together are not."""
    turns = [
        ("system", "Be brief."),
        ("human", "Name a colour."),
        ("gpt", "Blue, the sky's colour."),
        ("human", "More?"),
    ]
    row = {"id": "two", "conversations": [{"from": f, "value": v} for f, v in [*turns, ("gpt", "Red.")]]}
    (tmp_path / "two.jsonl").write_bytes(orjson.dumps(row) + b"\n")
    source = {"name": "two", "format": "sharegpt", "path": str(tmp_path / "two.jsonl")}
    _, manifest, dropped = curate(tmp_path, [source], {"steps": ["length"], "length": {"min_response_chars": 10}})
    assert dropped == []
    chars = len("Be brief.\nName a colour.\nMore?") + len("Blue, the sky's colour.\nRed.")
    assert manifest["lengths"]["two"]["total"] == chars
    card = (tmp_path / "out.jsonl.card.md").read_text()
    assert f"| two | unknown | 1 | 1 | 100.0% | {chars} | 0 |" in card
    assert "its system and user turns plus all its assistant turns" in card


def test_lengths_in_tokens_with_a_local_tokenizer(tmp_path, shared_data):
    from prep.tiny_llama import train_tokenizer

    texts = [t["value"] for r in sample_rows(shared_data)[:300] for t in r.conversations]
    train_tokenizer(texts, 512).save_pretrained(tmp_path / "tok")
    sources = [
        {"name": "plat", "format": "platypus", "path": str(shared_data / "platypus/open_platypus_layout.parquet")}
    ]
    _, manifest, dropped = curate(
        tmp_path,
        sources,
        {"steps": ["quality"], "tokenizer": str(tmp_path / "tok"), "length": {"max_total_tokens": 200}},
    )
    assert manifest["lengths"]["unit"] == "tokens"
    assert {"transformers", "tokenizers"} <= set(manifest["provenance"]["libraries"])
    assert (
        manifest["lengths"]["plat"]["max"]
        <= 200
        < max(
            len(r["output"]) for r in pq.read_table(shared_data / "platypus/open_platypus_layout.parquet").to_pylist()
        )
    )
    assert manifest["sources"]["plat"]["dropped"]["too_long"] == sum(d["reason"] == "too_long" for d in dropped) > 0


def test_compiled_word_hashes_split_words_as_the_regex_does(shared_data):
    """The numba tokenizer against `[^\\W_]+` / `[^\\W_]{2,}` on every turn of the samples (non-ASCII included):
    the same words, so equal word sequences hash equal and case or punctuation do not matter."""
    from prep.hashing import word_hashes

    texts = [t["value"] for r in sample_rows(shared_data) for t in r.conversations]
    texts += ["Ünïcödé façade — naïve café ½ x² _under_score_ İstanbul", "a\nb c\n\nde"]
    for text in texts:
        regex_words = words(text)
        hashes, _ = word_hashes(text)
        assert len(hashes) == len(regex_words), text[:80]
        assert (hashes == word_hashes(" ".join(regex_words))[0]).all()
        long = [w for w in regex_words if len(w) >= 2]
        long_hashes, lines = word_hashes(text, 2)
        assert len(long_hashes) == len(long) and lines[-1] == len(long)
        assert len(lines) == text.lower().count("\n") + 2
    assert (word_hashes("Hello, WORLD!")[0] == word_hashes("hello world")[0]).all()
    assert len(set(word_hashes(" ".join(sorted({w for t in texts for w in words(t)})))[0])) == len(
        {w for t in texts for w in words(t)}
    )  # no collisions among the samples' distinct words
