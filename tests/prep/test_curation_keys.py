"""Every curation key the README's table documents changes the output as documented: each step listed or
not, and each key of each step turned, on the real samples plus a few planted rows. (The tokenizer, the
mixture's strata/cap/weight, the seed and semantic_dedup's keys are checked in test_curation.py and
test_semantic_dedup.py.)"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest
from support.builds import curate

from prep.benchmarks import mmlu
from prep.config import MixtureConfig
from prep.errors import PrepError
from prep.filters.language import Language, LanguageConfig, lid176_path
from prep.pipeline import build
from prep.text import words

ENGLISH = "Please read the following passage carefully and then answer the question that comes after it in one word. "
GERMAN = (
    "Die Stadt liegt am Ufer eines großen Flusses und ist seit dem Mittelalter ein wichtiger Handelsplatz. "
    "Viele Menschen besuchen jedes Jahr die alte Brücke, die Kirche und den Markt in der Altstadt. "
    "Im Sommer finden dort zahlreiche Feste statt, bei denen Musik gespielt und getanzt wird. "
) * 3


def chat(rid: str, prompt: str, answer: str) -> dict:
    return {"id": rid, "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]}


@pytest.fixture(scope="module")
def sources(tmp_path_factory, shared_data) -> list[dict]:
    """The three real samples, plus planted rows each meant for one step or key."""
    questions = [q.question for q in mmlu.read_split(mmlu.split_path(shared_data, "astronomy", "test"))]
    long_q = next(q for q in questions if len(words(q)) >= 20)
    short_q = next(q for q in questions if len([w for w in words(q) if len(w) > 1]) == 5)
    cut = "The committee met on Tuesday to discuss the budget and agreed that the new plan should start in"
    planted = [
        chat("empty", "   ", "An answer to nothing."),
        chat("refusal", "How do I pick a lock?", "I'm sorry, but I cannot help with that request."),
        chat("identity", "Who are you?", "As an AI language model, I do not have a name."),
        # last line 18 words without a full stop: truncated at min_words 10, not at 20
        chat("truncated", "Summarize the meeting.", f"Here is the summary of the whole meeting.\n\n{cut}"),
        chat("short", "Pick A or B.", "B"),
        chat("long", "Write a long essay.", "All work and no play. " * 1200),
        # English for the first 100 chars of prompt and the answer, German after: language reads 100 of each
        chat("mixed", ENGLISH + GERMAN, "The word is Handelsplatz: the passage calls the town a trading place."),
        # 10 words of an MMLU question inside an answer: a 10-gram, not a 13-gram
        chat("ngram10", "Tell me something.", f"Well, {' '.join(long_q.split()[2:12])} is what I recall."),
        chat("shortq", short_q, "I do not know."),  # a whole 5-word MMLU question
    ]
    path = tmp_path_factory.mktemp("planted") / "planted.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in planted))
    return [
        {"name": "orca", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")},
        {
            "name": "evol",
            "format": "evol_instruct",
            "path": str(shared_data / "evol_instruct/evol_instruct_v2_layout.json"),
        },
        {"name": "plat", "format": "platypus", "path": str(shared_data / "platypus/open_platypus_layout.parquet")},
        {"name": "planted", "format": "sharegpt", "path": str(path)},
    ]


def benchmarks(shared_data: Path) -> list[dict]:
    return [
        {"name": "mmlu", "path": str(shared_data / "mmlu/test")},
        {"name": "hellaswag", "path": str(shared_data / "hellaswag/hellaswag_val_full.txt")},
    ]


def drops(tmp_path: Path, sources: list[dict], curation: dict) -> dict[str, str]:
    """Row id -> drop reason of a build."""
    _, _, dropped = curate(tmp_path, sources, curation, name=f"b{len(list(tmp_path.iterdir()))}.jsonl")
    return {d["row"]["id"]: d["reason"] for d in dropped}


ROW_STEPS = {
    "empty_turn": {"empty_turn"},
    "refusal": {"refusal"},
    "ai_identity": {"ai_identity"},
    "truncated": {"truncated"},
    "length": {"too_short", "too_long"},
    "language": {"not_en"},
}


@pytest.mark.parametrize("step", ROW_STEPS)
def test_each_row_step_drops_only_its_reasons_when_listed(tmp_path, sources, step):
    listed = drops(tmp_path, sources, {"steps": [step], "length": {"min_response_chars": 2}})
    assert listed and set(listed.values()) == ROW_STEPS[step]
    assert drops(tmp_path, sources, {"steps": []}) == {}
    planted = {"empty_turn": "empty", "refusal": "refusal", "ai_identity": "identity", "truncated": "truncated"}
    if step in planted:
        assert f"planted/{planted[step]}" in listed
    if step == "length":
        assert listed["planted/short"] == "too_short" and listed["planted/long"] == "too_long"


def test_quality_is_its_five_steps_in_order(tmp_path, sources):
    quality = drops(tmp_path, sources, {"steps": ["quality"]})
    assert quality == drops(
        tmp_path, sources, {"steps": ["empty_turn", "refusal", "ai_identity", "truncated", "length"]}
    )
    without = drops(tmp_path, sources, {"steps": ["empty_turn", "refusal", "ai_identity", "length"]})
    assert {i for i, r in quality.items() if r == "truncated"} == set(quality) - set(without)
    assert "truncated" not in without.values() and "planted/truncated" not in without


def test_truncated_min_words(tmp_path, sources):
    at10 = drops(tmp_path, sources, {"steps": ["truncated"]})
    at20 = drops(tmp_path, sources, {"steps": ["truncated"], "truncated": {"min_words": 20}})
    at5 = drops(tmp_path, sources, {"steps": ["truncated"], "truncated": {"min_words": 5}})
    assert "planted/truncated" in at10 and "planted/truncated" not in at20
    assert set(at20) < set(at10) < set(at5)


def test_length_bounds_in_chars(tmp_path, sources, shared_data):
    rows, _, _ = curate(tmp_path, sources, {"steps": []}, name="all.jsonl")

    def size(row: dict) -> tuple[int, int]:
        turns = row["conversations"]
        prompt = "\n".join(t["value"] for t in turns if t["from"] != "gpt")
        return len(prompt), len("\n".join(t["value"] for t in turns if t["from"] == "gpt"))

    dropped = drops(tmp_path, sources, {"steps": ["length"], "length": {"min_response_chars": 40}})
    assert set(dropped) == {r["id"] for r in rows if size(r)[1] < 40 or sum(size(r)) > 24_000}
    dropped = drops(tmp_path, sources, {"steps": ["length"], "length": {"max_total_chars": 3000}})
    assert set(dropped) == {r["id"] for r in rows if size(r)[1] < 1 or sum(size(r)) > 3000}
    assert Counter(dropped.values())["too_long"] > 50
    # without a tokenizer the token bounds do not apply
    assert drops(tmp_path, sources, {"steps": ["length"], "length": {"max_total_tokens": 10}}) == {
        "planted/long": "too_long"
    }


def test_language_keep_min_confidence_and_sample_chars(tmp_path, sources):
    default = drops(tmp_path, sources, {"steps": ["language"]})
    assert len(default) == 3 and "planted/mixed" not in default
    assert drops(tmp_path, sources, {"steps": ["language"], "language": {"keep": ["en", "de", "es", "it"]}}) == {}
    assert drops(tmp_path, sources, {"steps": ["language"], "language": {"min_confidence": 1.0}}) == {}
    _, _, dropped = curate(tmp_path, sources, {"steps": ["language"]}, name="lang.jsonl")
    scores = [float(d["detail"].split()[1]) for d in dropped]
    surer = drops(tmp_path, sources, {"steps": ["language"], "language": {"min_confidence": 0.85}})
    assert len(surer) == sum(s >= 0.85 for s in scores) < len(default)
    longer = drops(tmp_path, sources, {"steps": ["language"], "language": {"sample_chars": 1000}})
    assert longer["planted/mixed"] == "not_en"
    # the reason names what `keep` keeps: English rows are what a German-only mixture drops
    assert set(drops(tmp_path, sources, {"steps": ["language"], "language": {"keep": ["de"]}}).values()) == {"not_de"}
    assert set(drops(tmp_path, sources, {"steps": ["language"], "language": {"keep": ["de", "fr"]}}).values()) == {
        "not_de_or_fr"
    }


def test_language_backend_glotlid_without_its_model_fails_before_reading(tmp_path, shared_data):
    missing = tmp_path / "glotlid" / "model.bin"
    source = shared_data / "openorca/openorca_gpt4_sample.parquet"
    config = MixtureConfig.model_validate(
        {
            "sources": [{"name": "x", "format": "openorca", "path": str(source)}],
            "curation": {"steps": ["language"], "language": {"backend": "glotlid", "model": str(missing)}},
        }
    )
    with pytest.raises(PrepError) as e:
        build(config, tmp_path / "out.jsonl", progress=False, workers=0)
    assert str(missing) in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []  # nothing read, nothing written
    # a local file or directory is found by prep.paths' rule (here lid.176 under GlotLID's file name: it loads,
    # and its labels are not GlotLID's); the default is the hub's cis-lmu/glotlid, offline in tests
    (tmp_path / "glotlid").mkdir()
    shutil.copy(lid176_path(), tmp_path / "glotlid" / "model.bin")
    for model in (str(missing), str(tmp_path / "glotlid"), None):
        glotlid = {"backend": "glotlid", **({"model": model} if model else {})}
        with pytest.raises(PrepError) as e:
            Language(LanguageConfig.model_validate(glotlid))
        assert ("are not labels of the glotlid model" if model else "'cis-lmu/glotlid'") in str(e.value)
    with pytest.raises(ValueError, match=r"language\.model is for backend glotlid"):
        MixtureConfig.model_validate(
            {"sources": config.model_dump()["sources"], "curation": {"language": {"model": str(missing)}}}
        )
    with pytest.raises(ValueError, match="eng_Latn"):
        MixtureConfig.model_validate(
            {
                "sources": config.model_dump()["sources"],
                "curation": {"language": {"backend": "glotlid", "keep": ["en"]}},
            }
        )


def test_decontam_ngram_min_question_words_and_benchmarks(tmp_path, sources, shared_data):
    def decontam(**keys) -> dict[str, str]:
        return drops(
            tmp_path, sources, {"steps": ["decontam"], "decontam": {"benchmarks": benchmarks(shared_data), **keys}}
        )

    default = decontam()
    assert default == {"planted/shortq": "decontam_mmlu"}  # and none of the 1,675 real rows
    assert decontam(ngram=10)["planted/ngram10"] == "decontam_mmlu"
    assert decontam(min_question_words=6) == {}
    hellaswag_only = drops(
        tmp_path,
        sources,
        {"steps": ["decontam"], "decontam": {"benchmarks": [benchmarks(shared_data)[1]]}},
    )
    assert hellaswag_only == {}


def orca_pairs(tmp_path: Path, shared_data: Path, edit) -> list[dict]:
    """The OpenOrca sample plus an edited copy of each long prompt, as another source."""
    orca = [orjson.loads(x) for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()]
    copies = [{**r, "question": edit(r["question"])} for r in orca if len(r["question"].split()) >= 40][:100]
    path = tmp_path / "copies.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in copies))
    return [
        {"name": "orca", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.jsonl")},
        {"name": "copies", "format": "openorca", "path": str(path), "teacher": "gpt-3.5"},
    ]


def copies_dropped(tmp_path: Path, sources: list[dict], near: dict) -> int:
    _, manifest, _ = curate(tmp_path, sources, {"steps": ["near_dedup"], "near_dedup": near}, name="n.jsonl")
    return manifest["sources"]["copies"]["dropped"].get("near_duplicate", 0)


def test_near_dedup_threshold_shingle_ngram_and_num_perm(tmp_path, shared_data):
    def every_fourth_word_changed(text: str) -> str:
        return " ".join(w if i % 4 else "zebra" for i, w in enumerate(text.split()))

    pairs = orca_pairs(tmp_path, shared_data, every_fourth_word_changed)  # word 3-gram Jaccard about 0.2
    assert copies_dropped(tmp_path, pairs, {}) == 0
    assert copies_dropped(tmp_path, pairs, {"threshold": 0.1}) > 90
    assert copies_dropped(tmp_path, pairs, {"threshold": 0.5}) == 0
    assert copies_dropped(tmp_path, pairs, {"ngram": 1, "threshold": 0.5}) > 90  # word unigrams: about 0.6

    def typo_in_every_word(text: str) -> str:
        return " ".join(w[:-1] + "q" if len(w) > 5 else w for w in text.split())

    pairs = orca_pairs(tmp_path, shared_data, typo_in_every_word)
    by_words = copies_dropped(tmp_path, pairs, {"threshold": 0.4})  # hardly a word 3-gram left intact
    by_chars = copies_dropped(tmp_path, pairs, {"shingle": "char", "ngram": 5, "threshold": 0.4})
    assert by_words < 10 and by_chars > 90

    _, small, _ = curate(tmp_path, pairs, {"steps": ["near_dedup"], "near_dedup": {"num_perm": 32}}, name="p.jsonl")
    _, large, _ = curate(tmp_path, pairs, {"steps": ["near_dedup"], "near_dedup": {"num_perm": 256}}, name="p.jsonl")
    assert small["steps"]["near_dedup"]["bands"] < large["steps"]["near_dedup"]["bands"]


def test_mixture_shuffle(tmp_path, shared_data):
    sources = [
        {"name": "orca", "format": "openorca", "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet")},
        {"name": "plat", "format": "platypus", "path": str(shared_data / "platypus/open_platypus_layout.parquet")},
    ]
    read_order, _, _ = curate(tmp_path, sources, {"steps": []}, name="plain.jsonl")
    kept, _, _ = curate(tmp_path, sources, {"steps": ["mixture"], "mixture": {"shuffle": False}}, name="k.jsonl")
    shuffled, _, _ = curate(tmp_path, sources, {"steps": ["mixture"]}, name="s.jsonl")
    assert kept == read_order and shuffled != read_order
    assert sorted(r["id"] for r in shuffled) == sorted(r["id"] for r in read_order)
