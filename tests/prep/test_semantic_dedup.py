"""Semantic dedup: with the real all-MiniLM-L6-v2 (`make models`), the recall and precision the README states on a
planted set of paraphrases and look-alikes, each dropped row naming the row it copies; with a tiny random
sentence-transformers model built here, the tiled search finds the pairs a brute-force cosine matrix finds and a
duplicate group keeps its best row."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import REPO

from prep import pipeline
from prep.config import MixtureConfig
from prep.dedup import semantic
from prep.errors import PrepError

pytest.importorskip("sentence_transformers")


def tiny_sentence_model(out: Path, texts: list[str]) -> Path:
    """A 1-layer random BERT with a WordPiece vocabulary trained on `texts`, mean-pooled and normalized as
    all-MiniLM-L6-v2 is."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers import models as token_models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    tok = Tokenizer(token_models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=3000, special_tokens=special, show_progress=False)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=512,
    )
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(
            vocab_size=len(fast),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            initializer_range=0.5,
        )
    )
    with torch.no_grad():  # positions shared by all prompts would make every pair look alike
        bert.embeddings.position_embeddings.weight.zero_()
        bert.embeddings.token_type_embeddings.weight.zero_()
    bert.save_pretrained(out / "bert")
    fast.save_pretrained(out / "bert")
    model = SentenceTransformer(
        modules=[
            modules.Transformer(str(out / "bert"), max_seq_length=256),
            modules.Pooling(32, "mean"),
            modules.Normalize(),
        ],
        device="cpu",
    )
    model.save(str(out / "model"))
    return out / "model"


def test_semantic_dedup_finds_the_brute_force_pairs_and_keeps_the_best_copy(tmp_path, shared_data, monkeypatch):
    orca = [orjson.loads(x) for x in (shared_data / "openorca/openorca_gpt4_sample.jsonl").read_bytes().splitlines()]
    model_dir = tiny_sentence_model(tmp_path, [r["question"] for r in orca])
    rng = random.Random(0)
    sample = rng.sample(orca, 60)
    # Known neighbours: the model lower-cases, so an upper-cased copy embeds exactly as its original (cosine 1)
    # whatever the random weights; the reworded copies are caught or not by the model's judgement, which the
    # brute-force checks below cover either way.
    twins = {r["id"] for r in sample[:30]}
    planted = [{**r, "question": r["question"].upper()} for r in sample[:30]]
    for r in sample[30:]:  # lightly reworded copies under a weaker teacher
        w = r["question"].split(" ")
        w[rng.randrange(len(w))] = "zebra"
        planted.append({**r, "question": " ".join(w).upper()})
    copies = tmp_path / "copies.jsonl"
    copies.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in planted))
    threshold = 0.99
    config = MixtureConfig.model_validate(
        {
            "seed": 1,
            "sources": [
                {
                    "name": "gpt4",
                    "format": "openorca",
                    "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet"),
                },
                {"name": "gpt35", "format": "openorca", "path": str(copies), "teacher": "gpt-3.5"},
            ],
            "curation": {
                "steps": ["semantic_dedup"],
                "semantic_dedup": {"model": str(model_dir), "threshold": threshold, "device": "cpu", "batch_size": 64},
            },
        }
    )
    monkeypatch.setattr(semantic, "ROW_TILE", 128)  # many tiles, and tiles that cut through the diagonal
    monkeypatch.setattr(semantic, "COLUMN_TILE", 320)
    out, dropped_file = tmp_path / "out.jsonl", tmp_path / "dropped.jsonl"
    manifest = pipeline.build(config, out, dropped=dropped_file, progress=False, workers=0)

    kept = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    dropped = [orjson.loads(x) for x in dropped_file.read_bytes().splitlines()]
    assert {d["reason"] for d in dropped} == {"semantic_duplicate"}
    assert manifest["steps"]["semantic_dedup"]["dropped"] == len(dropped) > 0
    assert manifest["totals"]["read"] == 1060 == len(kept) + len(dropped)
    assert "sentence-transformers" in manifest["provenance"]["libraries"]

    from sentence_transformers import SentenceTransformer

    rows = kept + [d["row"] for d in dropped]
    emb = SentenceTransformer(str(model_dir), device="cpu").encode(
        [r["conversations"][-2]["value"] for r in rows], normalize_embeddings=True
    )
    sims = emb @ emb.T
    np.fill_diagonal(sims, -1)
    eps = 1e-5  # the tiles and the whole matrix may round the last bit differently
    for i in range(len(kept), len(rows)):  # each dropped row has a partner at the threshold
        assert sims[i].max() >= threshold - eps
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    for copy in planted:  # each copy at the threshold from its GPT-4 original is dropped
        original, twin = by_id[f"gpt4/{copy['id']}"], by_id[f"gpt35/{copy['id']}"]
        if copy["id"] in twins:
            assert sims[original, twin] >= 1 - eps, copy["id"]
        if sims[original, twin] >= threshold + eps:
            assert twin >= len(kept), copy["id"]
    # no pair of kept rows is at the threshold
    k = sims[: len(kept), : len(kept)]
    assert k.max() < threshold + eps


def test_real_minilm_recall_and_precision_on_planted_paraphrases(tmp_path, shared_data, minilm_dir):
    """bench/semantic_dedup_bench.py's planted set at the default threshold (0.8, Platypus's): 30 paraphrase pairs
    and 30 look-alike pairs among 200 real OpenOrca prompts. README: recall 0.67 (20 of 30 pairs), precision 0.91
    (20 of 22 drops that touch a planted row; the two others: a look-alike translation request, and a planted
    app review whose OpenOrca twin is the same template)."""
    sys.path.insert(0, str(REPO / "bench"))
    from semantic_dedup_bench import KEPT, planted_sources, recall_precision, run

    sources, partner = planted_sources(tmp_path, shared_data, 200)
    threshold = semantic.SemanticDedupConfig().threshold
    dropped = run(str(minilm_dir), threshold, sources, tmp_path)
    correct, touching, pairs, _ = recall_precision(dropped, partner)
    assert pairs == 30 and correct >= 20 and correct / touching >= 0.9, (correct, touching)
    # every record names the kept row by id and their cosine, at the threshold unless a chain joined them
    ids = {orjson.loads(x)["id"] for x in (tmp_path / "out.jsonl").read_bytes().splitlines()}
    for record in map(orjson.loads, dropped.read_bytes().splitlines()):
        kept = KEPT.match(record["detail"])
        assert kept and kept.group(1) in ids, record["detail"]
        cosine = float(record["detail"].split("cosine ")[1].split(";")[0])
        assert cosine >= threshold - 1e-3 or "joined to it through" in record["detail"]


def test_semantic_dedup_refuses_a_missing_model_before_reading_anything(tmp_path, shared_data):
    config = MixtureConfig.model_validate(
        {
            "sources": [
                {
                    "name": "gpt4",
                    "format": "openorca",
                    "path": str(shared_data / "openorca/openorca_gpt4_sample.parquet"),
                }
            ],
            "curation": {"steps": ["semantic_dedup"], "semantic_dedup": {"model": "nobody/no-such-model"}},
        }
    )
    with pytest.raises(PrepError, match="nobody/no-such-model"):
        pipeline.build(config, tmp_path / "out.jsonl", progress=False, workers=0)
    assert not list(tmp_path.iterdir())  # stopped before any spill or output


def test_semantic_dedup_keys_threshold_max_tokens_and_batch_size(tmp_path, shared_data):
    """threshold and max_tokens change what is dropped as documented; batch_size and device only how the
    prompts are embedded."""
    orca = shared_data / "openorca/openorca_gpt4_sample.parquet"
    texts = [orjson.loads(x)["question"] for x in orca.with_suffix(".jsonl").read_bytes().splitlines()]
    model_dir = tiny_sentence_model(tmp_path, texts)

    def dropped(**keys) -> list[str]:
        section = {"model": str(model_dir), "threshold": 0.99, "device": "cpu", **keys}
        config = MixtureConfig.model_validate(
            {
                "sources": [{"name": "gpt4", "format": "openorca", "path": str(orca)}],
                "curation": {"steps": ["semantic_dedup"], "semantic_dedup": section},
            }
        )
        out = tmp_path / "out.jsonl"
        pipeline.build(config, out, dropped=tmp_path / "dropped.jsonl", progress=False, workers=0)
        return [orjson.loads(x)["row"]["id"] for x in (tmp_path / "dropped.jsonl").read_bytes().splitlines()]

    default = dropped()  # (which copy of a group stays may change with the groups, so counts are compared)
    assert len(dropped(threshold=0.9)) > len(default)
    # prompts cut to their first 8 tokens: rows sharing an opening ("Answer the following question: ...")
    assert len(dropped(max_tokens=8)) > len(default)
    assert dropped(batch_size=7) == default
