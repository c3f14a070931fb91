"""The select step on the real samples: variety and quality against a seeded random sample on a corpus skewed
on purpose, budgets never exceeded, output byte-identical for the seed, readable cluster labels, the data card,
licences, and the model scorers with tiny models built here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from prep import pipeline
from prep.benchmarks import mmlu
from prep.config import MixtureConfig
from prep.errors import PrepError
from prep.lengths import TokenCounter
from prep.rows import Row
from prep.select import cluster
from prep.select.score import TEACHER


def mmlu_rows(shared: Path, subjects: list[str], template: str) -> list[dict]:
    """MMLU test questions in one prompt template with a FLAN-style one-line answer: a template family."""
    rows = []
    for subject in subjects:
        for i, q in enumerate(mmlu.read_split(mmlu.split_path(shared, subject, "test"))):
            options = "\n".join(f"{k}. {c}" for k, c in zip(mmlu.LETTERS, q.choices, strict=True))
            rows.append(
                {
                    "id": f"{subject}-{i}",
                    "conversations": [
                        {"from": "human", "value": template.format(question=q.question, options=options)},
                        {"from": "gpt", "value": f"{mmlu.LETTERS[q.answer]}. {q.choices[q.answer]}"},
                    ],
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def samples(shared: Path) -> list[dict]:
    return [
        {"name": "openorca", "format": "openorca", "path": str(shared / "openorca/openorca_gpt4_sample.parquet")},
        {"name": "evol", "format": "evol_instruct", "path": str(shared / "evol_instruct/evol_instruct_v2_layout.json")},
        {"name": "platypus", "format": "platypus", "path": str(shared / "platypus/open_platypus_layout.parquet")},
    ]


@pytest.fixture(scope="module")
def skewed(tmp_path_factory, shared_data) -> tuple[Path, list[dict]]:
    """The samples plus 2,429 MMLU law and moral-scenario questions in one template, answered by GPT-3.5: two
    thirds of the corpus is one template family."""
    tmp = tmp_path_factory.mktemp("skewed")
    family = mmlu_rows(
        shared_data,
        ["professional_law", "moral_scenarios"],
        "Answer the following multiple choice question.\n\nQuestion: {question}\nOptions:\n{options}\nAnswer:",
    )
    sources = [
        *samples(shared_data),
        {
            "name": "flan_mc",
            "format": "sharegpt",
            "teacher": "gpt-3.5",
            "path": str(write_jsonl(tmp / "family.jsonl", family)),
        },
    ]
    return tmp, sources


def build_select(tmp: Path, sources: list[dict], select: dict, name: str, **kwargs) -> dict:
    config = MixtureConfig.model_validate(
        {
            "seed": 7,
            "sources": sources,
            "curation": {"steps": ["quality", "exact_dedup", "select"], "select": select, **kwargs.pop("curation", {})},
        }
    )
    return pipeline.build(config, tmp / name, progress=False, **kwargs)


@pytest.mark.parametrize("scope", ["source", "corpus"])
def test_selection_beats_a_random_sample_on_variety_and_gpt4_share(skewed, scope):
    tmp, sources = skewed
    # the pool the step sees, and its clusters: a build without a budget keeps all
    full = build_select(tmp, sources, {}, "all.jsonl", workers=0)
    pool = full["steps"]["select"]["rows_before"]
    assert full["rows"] == pool and full["sources"]["flan_mc"]["kept"] / pool > 0.6  # skewed indeed
    budget = int(0.3 * pool)
    select = {"budget": {"rows": budget}, "score_scope": scope}
    manifest = build_select(tmp, sources, select, "sel.jsonl", workers=0)
    report = manifest["steps"]["select"]
    assert manifest["rows"] == report["rows_after"] == budget
    assert manifest["totals"]["dropped"]["select_budget"] == pool - budget

    # a seeded random 30% of the same pool, measured on the same clusters: its rows per cluster are a
    # multivariate hypergeometric draw from the clusters' sizes; its GPT-4 share, that of random pool rows
    rng = np.random.default_rng(0)
    random_variety = cluster.variety(
        rng.multivariate_hypergeometric([c["rows_before"] for c in report["per_cluster"]], budget)
    )
    teachers = [orjson.loads(x)["teacher"] or "" for x in (tmp / "all.jsonl").read_bytes().splitlines()]
    gpt4 = np.array([TEACHER.get(t, 0.5) == 1 for t in teachers])
    random_gpt4 = float(gpt4[rng.choice(len(gpt4), size=budget, replace=False)].mean())
    kept_rows = {orjson.loads(x)["id"] for x in (tmp / "sel.jsonl").read_bytes().splitlines()}
    assert report["variety_after"] >= 1.2 * random_variety, (report["variety_after"], random_variety)
    assert report["gpt4_share_after"] >= random_gpt4
    assert report["variety_after"] > report["variety_before"]
    # the template family gave up most: its share fell by a twentieth through the cluster quotas alone (scores
    # ranked within each source), by a fifth or more when its GPT-3.5 answers also rank below the rest (corpus)
    family_kept = sum(1 for i in kept_rows if i.startswith("flan_mc/"))
    print(
        "variety",
        report["variety_before"],
        report["variety_after"],
        random_variety,
        "gpt4",
        report["gpt4_share_after"],
        random_gpt4,
    )
    assert family_kept / budget < {"source": 0.95, "corpus": 0.8}[scope] * full["sources"]["flan_mc"]["kept"] / pool

    # card and plots beside the output; its kept chars are the exact sums, the select table's too
    card = (tmp / "sel.jsonl.card.md").read_text()
    assert "variety index" in card and f"{report['variety_after']:.2f}" in card
    chars: Counter[str] = Counter()
    for line in (tmp / "sel.jsonl").read_bytes().splitlines():
        row = Row(**{k: v for k, v in orjson.loads(line).items() if k in Row.__dataclass_fields__})
        chars[row.source] += sum(TokenCounter(None).prompt_response(row))
    for name, n in chars.items():
        assert report["per_source"][name]["tokens_after"] == manifest["lengths"][name]["total"] == n
        assert (
            f"| {name} | unknown | {full['sources'][name]['read']:,} | {report['per_source'][name]['rows_after']:,} |"
            in card
        )
        assert f"| {n:,} |" in card
    assert "so do the select tables below" in card
    assert (tmp / "sel.jsonl.card.clusters.png").stat().st_size > 1000
    assert (tmp / "sel.jsonl.card.scores.png").stat().st_size > 1000


def test_same_seed_same_bytes_for_any_workers(skewed):
    tmp, sources = skewed
    a = build_select(tmp, sources, {"budget": {"rows": 500}}, "a.jsonl", workers=0)
    b = build_select(tmp, sources, {"budget": {"rows": 500}}, "b.jsonl", workers=2)
    assert (tmp / "a.jsonl").read_bytes() == (tmp / "b.jsonl").read_bytes()
    assert a["steps"]["select"] == b["steps"]["select"]


def test_token_budget_is_never_exceeded(tmp_path, shared_data):
    from prep.tiny_llama import train_tokenizer
    from prep.tokens import ChatTokens

    texts = [
        orjson.loads(x)["question"]
        for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()
    ]
    train_tokenizer(texts, 1000).save_pretrained(tmp_path / "tok")
    chat = ChatTokens.load(str(tmp_path / "tok"))  # as Axolotl counts them: the recipes' chat template
    for budget in (20_000, 150_000):
        manifest = build_select(
            tmp_path,
            samples(shared_data),
            {"budget": {"tokens": budget}},
            f"t{budget}.jsonl",
            curation={"tokenizer": str(tmp_path / "tok")},
            workers=0,
        )
        from prep.rows import Row

        kept = [Row(**orjson.loads(x)) for x in (tmp_path / f"t{budget}.jsonl").read_bytes().splitlines()]
        used = sum(chat.count(r.conversations)[0] for r in kept)
        report = manifest["steps"]["select"]
        assert report["unit"] == "tokens (chat template)" and used == report["tokens_after"] <= budget
        largest = max(c["tokens_before"] / max(c["rows_before"], 1) for c in report["per_cluster"])
        assert budget - used < 20 * largest  # filled, not just under


def test_known_topics_land_in_different_clusters_with_readable_labels(tmp_path, shared_data):
    science = mmlu_rows(shared_data, ["high_school_biology", "high_school_chemistry"], "{question}\n{options}")[:300]
    arithmetic = mmlu_rows(shared_data, ["elementary_mathematics"], "{question}\n{options}")[:300]
    contexts = [
        orjson.loads(x)["ctx"] for x in (shared_data / "hellaswag/hellaswag_val_sample.jsonl").read_bytes().splitlines()
    ]
    languages = ["French", "German", "Spanish", "Italian"]
    translation = [
        {
            "id": f"tr-{i}",
            "conversations": [
                {"from": "human", "value": f"Translate the following sentence to {languages[i % 4]}:\n{ctx}"},
                {"from": "gpt", "value": ctx},
            ],
        }
        for i, ctx in enumerate(contexts[:300])
    ]
    topics = {"science": science, "arithmetic": arithmetic, "translation": translation}
    sources = [
        {"name": t, "format": "sharegpt", "path": str(write_jsonl(tmp_path / f"{t}.jsonl", rows))}
        for t, rows in topics.items()
    ]
    manifest = build_select(tmp_path, sources, {"clusters": 6}, "topics.jsonl", workers=0)
    per_cluster = manifest["steps"]["select"]["per_cluster"]
    labels = {c["cluster"]: c["label"] for c in per_cluster}
    # rows of each topic (a source) in each cluster: nothing is dropped without a budget
    mix = np.array([[c["sources"].get(t, 0) for t in topics] for c in per_cluster])
    assert mix.sum(axis=0).tolist() == [manifest["sources"][t]["kept"] for t in topics]
    owner = {c["cluster"]: int(m.argmax()) for c, m in zip(per_cluster, mix, strict=True)}  # dominant topic
    assert mix.max(axis=1).sum() >= 0.9 * mix.sum()
    for i, name in enumerate(topics):
        mine = [c for c, o in owner.items() if o == i]
        assert mix[mine, i].sum() >= 0.8 * mix[:, i].sum(), name  # and each topic has clusters of its own
    translation_labels = " ".join(labels[c] for c, o in owner.items() if o == 2)
    assert "translate" in translation_labels
    science = " ".join(labels[c] for c, o in owner.items() if o == 0).split()
    arithmetic = " ".join(labels[c] for c, o in owner.items() if o == 1).split()
    assert {"cell", "cells", "dna", "gene", "membrane", "population", "acid", "chemical"} & set(science), science
    assert {"number", "equation", "miles", "minutes", "hours", "expression", "feet", "value"} & set(arithmetic)


@pytest.mark.parametrize("kind", ["reward", "deita"])
def test_model_scorer_orders_within_clusters(tmp_path, shared_data, kind):
    """A tiny random Llama (built here; no download) as a reward model or a Deita-style scorer: the step runs
    it on every pooled row, the selection follows the combined score, and the manifest names the model."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from prep.tiny_llama import build_tiny_llama

    texts = [
        orjson.loads(x)["question"]
        for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()
    ]
    model_dir = build_tiny_llama(tmp_path / "tiny", texts, vocab_size=600, hidden_size=32, layers=1)
    if kind == "reward":
        torch.manual_seed(0)
        config = LlamaConfig.from_pretrained(model_dir, num_labels=1)
        LlamaForSequenceClassification(config).save_pretrained(model_dir)
    select = {"budget": {"rows": 300}, "scorer": {"kind": kind, "model": str(model_dir), "device": "cpu", "weight": 3}}
    manifest = build_select(tmp_path, samples(shared_data), select, "m.jsonl", workers=0)
    report = manifest["steps"]["select"]
    assert report["scorer"] == {"kind": kind, "model": str(model_dir)}
    assert manifest["rows"] == 300
    assert report["scores_after"]["mean"] > report["scores_before"]["mean"]


def test_licences_of_kept_rows_and_incompatible_terms(tmp_path, shared_data):
    sources = samples(shared_data)
    sources[0]["licence"] = "mit"
    sources[1]["licence"] = "apache-2.0"
    sources[2]["licence"] = "cc-by-nc-4.0"  # the fixture's rows are Alpaca's seed tasks
    manifest = build_select(tmp_path, sources, {}, "l.jsonl", workers=0)
    lic = manifest["licences"]
    assert lic["kept"] == {"openorca": "mit", "evol": "apache-2.0", "platypus": "cc-by-nc-4.0"}
    (warning,) = lic["warnings"]
    assert "non-commercial" in warning and "platypus (cc-by-nc-4.0)" in warning
    assert f"**Warning:** {warning}" in (tmp_path / "l.jsonl.card.md").read_text()
    # no row kept from the non-commercial source: no warning
    sources[2]["path"] = str(write_jsonl(tmp_path / "empty.jsonl", []))
    manifest = build_select(tmp_path, sources, {}, "l2.jsonl", workers=0)
    assert manifest["licences"]["warnings"] == [] and "platypus" not in manifest["licences"]["kept"]


def test_sentence_transformers_backend_with_a_tiny_local_model(tmp_path, shared_data):
    pytest.importorskip("sentence_transformers")
    from test_semantic_dedup import tiny_sentence_model

    texts = [
        orjson.loads(x)["question"]
        for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()
    ]
    model = tiny_sentence_model(tmp_path, texts)
    select = {
        "budget": {"rows": 400},
        "clusters": 8,
        "embed": {"backend": "sentence_transformers", "model": str(model), "device": "cpu"},
    }
    manifest = build_select(tmp_path, samples(shared_data), select, "st.jsonl", workers=0)
    report = manifest["steps"]["select"]
    assert report["embed"] == f"sentence_transformers {model}" and report["clusters"] == 8
    assert manifest["rows"] == report["rows_after"] == 400
    assert sum(c["rows_after"] for c in report["per_cluster"]) == 400
    assert report["variety_after"] >= report["variety_before"]


def test_quotas_fill_the_budget_never_above_a_cluster_and_shrink_large_clusters_most():
    sizes = np.array([1000, 100, 10, 1])
    for budget in (5, 50, 500, 1110, 5000):
        q = cluster.quotas(sizes, budget, 0.5)
        assert np.all(q <= sizes + 1e-9) and abs(q.sum() - min(budget, sizes.sum())) < 1e-6
    q = cluster.quotas(sizes, 500, 0.5)
    assert q[3] == 1 and q[2] == 10  # small clusters whole
    assert q[0] / sizes[0] < q[1] / sizes[1]  # the large one gives up the most
    assert cluster.variety(np.array([5, 5, 5, 5])) == pytest.approx(4)


def test_config_errors_name_the_key(tmp_path, shared_data):
    base = {"sources": samples(shared_data)[2:]}
    with pytest.raises(ValueError, match="either `rows: N` or `tokens: N`"):
        MixtureConfig.model_validate({**base, "curation": {"steps": ["select"], "select": {"budget": {}}}})
    with pytest.raises(ValueError, match="select must come after the dedup steps"):
        MixtureConfig.model_validate({**base, "curation": {"steps": ["select", "exact_dedup"]}})
    config = MixtureConfig.model_validate(
        {**base, "curation": {"steps": ["select"], "select": {"budget": {"tokens": 1000}}}}
    )
    with pytest.raises(PrepError, match=r"curation\.tokenizer"):
        pipeline.build(config, tmp_path / "out.jsonl", progress=False, workers=0)
    assert not list(tmp_path.iterdir())  # refused before anything was read or written


def test_prep_compare_shows_two_mixtures_side_by_side(tmp_path, shared_data):
    from click.testing import CliRunner

    from prep.cli import main

    a = build_select(tmp_path, samples(shared_data), {"budget": {"rows": 300}}, "a.jsonl", workers=0)
    b = build_select(tmp_path, samples(shared_data), {"budget": {"rows": 600}}, "b.jsonl", workers=0)
    result = CliRunner().invoke(
        main,
        [
            "compare",
            str(tmp_path / "a.jsonl.manifest.json"),
            str(tmp_path / "b.jsonl.manifest.json"),
            "--plot",
            str(tmp_path / "cmp.png"),
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    for m in (a, b):
        s = m["steps"]["select"]
        assert f"{s['variety_before']:.2f} -> {s['variety_after']:.2f}" in result.output
        assert f"{m['rows']:,}" in result.output
    assert "300 rows" in result.output and "600 rows" in result.output
    assert (tmp_path / "cmp.png").stat().st_size > 1000
    bad = CliRunner().invoke(main, ["compare", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl.manifest.json")])
    assert bad.exit_code != 0 and "a.jsonl" in bad.output


def test_capybara_and_metamath_layouts(tmp_path):
    """The hub layouts of LDJnr/Capybara and meta-math/MetaMathQA (as their dataset cards list the fields)."""
    capy = [
        {
            "source": "Know-Logic",
            "conversation": [
                {"input": "What is 2+2?", "output": "4, since 2+2=4."},
                {"input": "And 3+3?", "output": "6."},
            ],
        },
        {"source": "Airoboros", "conversation": [{"input": "Hi", "output": None}]},
    ]
    meta = [
        {
            "query": "Solve 3x = 12.",
            "response": "x = 4. The answer is: 4",
            "type": "GSM_Rephrased",
            "original_question": "Solve 3x = 12.",
        }
    ]
    config = MixtureConfig.model_validate(
        {
            "sources": [
                {"name": "capybara", "format": "capybara", "path": str(write_jsonl(tmp_path / "c.jsonl", capy))},
                {"name": "metamath", "format": "metamath", "path": str(write_jsonl(tmp_path / "m.jsonl", meta))},
            ],
            "curation": {"steps": []},
        }
    )
    manifest = pipeline.build(config, tmp_path / "out.jsonl", progress=False, workers=0)
    rows = {r["id"]: r for r in map(orjson.loads, (tmp_path / "out.jsonl").read_bytes().splitlines())}
    assert [t["from"] for t in rows["capybara/0"]["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert rows["capybara/0"]["subsource"] == "Know-Logic"
    assert manifest["sources"]["capybara"]["dropped"] == {"missing_field": 1}  # a null output, counted
    assert rows["metamath/0"]["subsource"] == "GSM_Rephrased"
    assert rows["metamath/0"]["conversations"][1]["value"].endswith("The answer is: 4")


def cli_build(tmp_path: Path, sources: list[dict], curation: dict, name: str) -> tuple[dict, str]:
    """`prep build` as a user runs it: the manifest, and what it printed."""
    import yaml
    from click.testing import CliRunner

    from prep.cli import main

    config = tmp_path / f"{name}.yml"
    config.write_text(yaml.safe_dump({"seed": 7, "sources": sources, "curation": curation}))
    out = tmp_path / f"{name}.jsonl"
    result = CliRunner().invoke(
        main, ["build", "--config", str(config), "--out", str(out), "--no-progress"], terminal_width=400
    )
    assert result.exit_code == 0, result.output
    return orjson.loads((tmp_path / f"{name}.jsonl.manifest.json").read_bytes()), result.output


def test_no_source_is_wiped_without_a_warning_and_the_card_flags_over_cut_sources(tmp_path, shared_data):
    """Scores compared across sources (`score_scope: corpus`) rank Open-Platypus' human-written rows (unknown
    teacher) below the GPT-4 rows: at a small budget it all but vanishes, which the build now says by name, and
    the card marks; a row filter that empties a source warns too. Ranking within sources (the default) or a
    floor keeps it."""
    identity = [
        {
            "id": str(i),
            "conversations": [
                {"from": "human", "value": q},
                {"from": "gpt", "value": "As an AI language model, I cannot."},
            ],
        }
        for i, q in enumerate(["Who are you?", "What is your name?", "Are you human?"])
    ]
    sources = [
        *samples(shared_data),
        {"name": "identity", "format": "sharegpt", "path": str(write_jsonl(tmp_path / "id.jsonl", identity))},
    ]
    steps = ["quality", "exact_dedup", "select"]
    manifest, printed = cli_build(
        tmp_path, sources, {"steps": steps, "select": {"budget": {"rows": 100}, "score_scope": "corpus"}}, "corpus"
    )
    cuts, plat = manifest["cuts"], manifest["steps"]["select"]["per_source"]["platypus"]
    assert cuts["stages"] == ["read", "row filters", "exact_dedup", "select"] and cuts["from"] == "exact_dedup"
    assert cuts["rows"]["identity"] == [3, 0, 0, 0]
    assert "warning: row filters kept no row of source 'identity' (3 -> 0)" in printed
    assert plat["rows_after"] < 0.1 * plat["rows_before"]
    if plat["rows_after"]:
        assert (
            f"warning: select left source 'platypus' {plat['rows_after']} of its {plat['rows_before']} rows" in printed
        )
    else:
        assert f"warning: select kept no row of source 'platypus' ({plat['rows_before']} -> 0)" in printed
    assert "platypus" in cuts["over_cut"] and "openorca" not in cuts["over_cut"]
    card = (tmp_path / "corpus.jsonl.card.md").read_text()
    assert "| platypus **(over-cut)** |" in card and "- row filters kept no row of source 'identity' (3 -> 0)" in card

    # ranked within each source (the default): Open-Platypus keeps about the overall share, no select warning
    manifest, printed = cli_build(tmp_path, sources, {"steps": steps, "select": {"budget": {"rows": 100}}}, "source")
    plat = manifest["steps"]["select"]["per_source"]["platypus"]
    assert plat["rows_after"] >= 0.5 * manifest["cuts"]["overall_kept_share"] * plat["rows_before"]
    assert "platypus" not in manifest["cuts"]["over_cut"] and "source 'platypus'" not in printed

    # a floor: 30% of Open-Platypus' rows whatever the scores, the budget still exact
    select = {"budget": {"rows": 100}, "score_scope": "corpus", "floors": {"platypus": 0.3}}
    manifest, printed = cli_build(tmp_path, sources, {"steps": steps, "select": select}, "floor")
    report = manifest["steps"]["select"]
    need = int(np.ceil(0.3 * report["per_source"]["platypus"]["rows_before"]))
    assert report["floors"] == {
        "platypus": {"share": 0.3, "rows": need, "kept": report["per_source"]["platypus"]["rows_after"]}
    }
    assert report["per_source"]["platypus"]["rows_after"] >= need and manifest["rows"] == 100


def test_a_floor_for_an_unknown_source_is_refused_before_reading(tmp_path, shared_data):
    config = MixtureConfig.model_validate(
        {"sources": samples(shared_data), "curation": {"steps": ["select"], "select": {"floors": {"platypuss": 0.2}}}}
    )
    with pytest.raises(PrepError, match=r"select\.floors: no source named 'platypuss'"):
        pipeline.build(config, tmp_path / "out.jsonl", progress=False, workers=0)
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"floors are shares in \(0, 1\]"):
        MixtureConfig.model_validate(
            {"sources": samples(shared_data), "curation": {"steps": ["select"], "select": {"floors": {"platypus": 2}}}}
        )


@pytest.mark.parametrize(
    "prompts", [["Hello there friend"], ["alpha", "beta", "gamma"]], ids=["one-row", "no-shared-word"]
)
def test_select_runs_on_a_one_row_source_and_on_prompts_that_share_no_word(tmp_path, prompts):
    """Nothing to cluster on (no word in two prompts): one cluster, the scores choose (was `ValueError: Found
    array with 0 feature(s)` after the whole corpus had been read)."""
    rows = [
        {"id": str(i), "conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": "Hi!"}]}
        for i, p in enumerate(prompts)
    ]
    sources = [{"name": "s", "format": "sharegpt", "path": str(write_jsonl(tmp_path / "s.jsonl", rows))}]
    manifest = build_select(tmp_path, sources, {"budget": {"rows": 1}}, "out.jsonl", workers=0)
    assert manifest["rows"] == 1 and manifest["steps"]["select"]["clusters"] == 1
