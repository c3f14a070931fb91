"""The real models `make models` unpacks behave as the published ones: MiniLM puts a paraphrase nearer than an
unrelated prompt, SmolLM2 predicts a sentence far better than its words shuffled and ends a chat turn on
<|im_end|>. A wrong wheel, a broken conversion or a missing cache fails here first."""

from __future__ import annotations

import random


def test_minilm_ranks_a_paraphrase_above_an_unrelated_prompt(minilm_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir), device="cpu")
    a, b, c = model.encode(
        [
            "How do I reverse a list in Python?",
            "What is the way to invert the order of a Python list?",
            "Name three rivers that flow through Germany.",
        ],
        normalize_embeddings=True,
    )
    assert model.get_embedding_dimension() == 384
    assert float(a @ b) > 0.7 > 0.2 > float(a @ c)


def test_smollm2_knows_english_and_its_chat_format(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.eos_token == tok.pad_token == "<|im_end|>" and tok.eos_token_id == model.config.eos_token_id
    text = (
        "The United States of America declared its independence from Great Britain on July 4, 1776, and George "
        "Washington became the first president of the new country."
    )
    words = text.split()
    random.Random(0).shuffle(words)

    def loss(t: str) -> float:
        ids = tok(t, return_tensors="pt").input_ids
        with torch.no_grad():
            return float(model(ids, labels=ids).loss)

    assert loss(text) < 2.5 < 6 < loss(" ".join(words))  # measured: 1.7 and 7.2
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True, tokenize=False
    )
    ids = tok(chat, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=24, do_sample=False)[0, ids.shape[1] :]
    assert "4" in tok.decode(out) and out[-1] == tok.eos_token_id  # answered, and stopped at the turn's end
