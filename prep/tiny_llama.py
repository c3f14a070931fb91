"""A tiny random-weight Llama with a BPE tokenizer trained on the mixture itself, so the whole chain
(prep -> axolotl train -> per-epoch lm-eval) runs on a CPU without downloading a model."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from prep.errors import PrepError
from prep.outputs import TEMP_PREFIX, blocked_signals, dir_mode
from prep.paths import special_file
from prep.readers import json_lines, open_binary

SPECIAL = ["<unk>", "<s>", "</s>"]


def check_out(out: Path, text: Path) -> None:
    """`out` is replaced whole: refuse a directory that holds the text or something other than a model."""
    if out.resolve() in text.resolve().parents:
        raise PrepError(f"--out {out} holds --text {text}, and the model replaces the directory whole; give another")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise PrepError(
            f"--out {out} is a directory that holds no model (no config.json), and the model replaces it whole; "
            "give a new directory or an earlier tiny-llama's"
        )


def conversation_texts(jsonl: Path) -> Iterator[str]:
    """The turns' texts of a ShareGPT JSONL; a line that is not one is a PrepError naming it."""
    if what := special_file(jsonl):
        raise PrepError(f"{jsonl}: {what}; give a `prep build` output")
    count = 0
    with open_binary(jsonl) as f:
        for n, line in json_lines(f):
            if not line.strip():
                continue
            try:
                turns = orjson.loads(line)["conversations"]
                texts = [turn["value"] for turn in turns]
            except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                raise PrepError(
                    f"{jsonl} line {n}: not a ShareGPT row ({type(e).__name__}: {e}); give a `prep build` output"
                ) from e
            if not all(isinstance(t, str) for t in texts):
                raise PrepError(f"{jsonl} line {n}: a turn's `value` is not a string; give a `prep build` output")
            count += 1
            yield from texts
    if not count:
        raise PrepError(f"{jsonl}: no conversations to train the tokenizer on")


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """Byte-level BPE: every string encodes (no <unk>), like Llama's byte fallback."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        model_max_length=2048,
    )


def build_tiny_llama(
    out: Path, texts: Iterable[str], *, vocab_size: int = 2048, hidden_size: int = 64, layers: int = 2, seed: int = 0
) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.{out.name}.", dir=out.parent))
    old = tmp.with_name(tmp.name + ".old")
    try:
        os.chmod(tmp, dir_mode())
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with blocked_signals():  # the old model goes only once the new one is whole
            if out.exists():
                out.rename(old)
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out
