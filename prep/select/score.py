"""Quality: a score per row in [0, 1], the weighted mean of documented signals, each in [0, 1]:

- teacher: the completion model, where the source records it: GPT-4 1, other or unknown 0.5, GPT-3.5 0
  (Orca and SlimOrca found GPT-4's explanations the better teacher; the dedups keep GPT-4 copies for the same
  reason);
- substance: answer words relative to the question's, log2(1 + a / (q + 20)) / log2(9), capped at 1: a one-word
  label after a long passage scores near 0, an explanation eight times the question (plus 20 words) scores 1
  (AlpaGasus and Deita both found short, unexplained answers the ones to drop);
- complexity: instruction words, log(1 + q) / log(1 + 300), capped at 1: Evol-Instruct's in-depth evolution
  adds constraints, steps and context to an instruction, so depth shows as length (the V2 143k file has no
  depth column; Deita's complexity scores grow with it too);
- turns: (exchanges - 1) / 3, capped at 1: multi-turn conversations teach what single turns cannot.

A model scorer (off by default) adds its rank-normalized score with its weight: a reward model (one logit
of a sequence classifier on the chat), Deita's quality scorer (expected value of its next-token
distribution over "1".."6" after Deita's own prompt), or a small causal LM's instruction-following difficulty
(prep/select/ifd.py; rows at or above `max_ifd` are dropped as misaligned). Both load from the hub or a local directory, never
with remote code, and run on a GPU when there is one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from prep.errors import PrepError
from prep.rows import Row
from prep.select.config import ScorerConfig, ScoreWeights
from prep.text import prompt_text, response_text

TEACHER = {"gpt-4": 1.0, "gpt-3.5": 0.0}  # any other teacher (or none): 0.5


def words(text: str) -> int:
    """Whitespace-separated words, counted by their separators (str.split built lists: 10 us a row)."""
    return text.count(" ") + text.count("\n") + 1


def signals(rows: list[Row]) -> np.ndarray:
    """(teacher, substance, complexity, turns) per row, vectorized over the batch."""
    teacher = np.array([TEACHER.get(r.teacher or "", 0.5) for r in rows])
    q = np.array([words(prompt_text(r)) for r in rows], dtype=np.float64)
    a = np.array([words(response_text(r)) for r in rows], dtype=np.float64)
    exchanges = np.array([sum(t["from"] == "gpt" for t in r.conversations) for r in rows], dtype=np.float64)
    return np.stack(
        [
            teacher,
            np.minimum(1.0, np.log2(1 + a / (q + 20)) / np.log2(9)),
            np.minimum(1.0, np.log1p(q) / np.log1p(300)),
            np.minimum(1.0, (exchanges - 1) / 3),
        ],
        axis=1,
    )


def heuristic_scores(rows: list[Row], weights: ScoreWeights) -> np.ndarray:
    w = np.array([weights.teacher, weights.substance, weights.complexity, weights.turns], dtype=np.float64)
    if not rows:
        return np.empty(0, dtype=np.float32)
    return (signals(rows) @ w / max(w.sum(), 1e-9)).astype(np.float32)


def rank_normalize(x: np.ndarray) -> np.ndarray:
    """Ranks scaled to [0, 1] (ties share their lowest rank): a model's scale never outweighs the signals. A NaN
    (a row the model could not score) sits in the middle, 0.5."""
    from scipy.stats import rankdata  # scipy.stats alone takes 0.4 s to load: not to check a config

    scored = ~np.isnan(x)
    out = np.full(len(x), 0.5, dtype=np.float32)
    n = int(scored.sum())
    out[scored] = 1.0 if n < 2 else (rankdata(x[scored], method="min") - 1) / (n - 1)
    return out


DEITA_QUALITY = (
    "You are a helpful assistant. Please identify the quality score of the Response corresponding to the "
    "Question. \n #Question#:\n{question}\n#Response#:\n{answer} \n##Quality: "
)  # the template hkust-nlp/deita's Llama scorer was trained on (src/deita/selection/scorer/llama_scorer.py)


class ModelScorer:
    """A reward model or Deita's quality scorer over (prompt, response) pairs."""

    def __init__(self, config: ScorerConfig, path: str) -> None:
        """`path`: the model's local directory (prep.models.model_path, resolved before the corpus is read)."""
        import torch
        from transformers import AutoTokenizer

        self.config = config
        self.device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        if config.kind == "reward":
            from transformers import AutoModelForSequenceClassification

            self.model: Any = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=1, torch_dtype=dtype, trust_remote_code=False
            )
            self.model.config.pad_token_id = self.tok.pad_token_id
        else:
            from transformers import AutoModelForCausalLM

            self.model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=dtype, trust_remote_code=False)
            self.digits = [self.tok.convert_tokens_to_ids(str(d)) for d in range(1, 7)]
            if any(d is None or d == self.tok.unk_token_id for d in self.digits):
                raise PrepError(f"select.scorer.model {config.model!r}: its vocabulary has no tokens '1'..'6'")
        self.model.to(self.device).eval()

    def _texts(self, pairs: list[tuple[str, str]]) -> list[str]:
        if self.config.kind == "deita":
            return [DEITA_QUALITY.format(question=q, answer=a) for q, a in pairs]
        if self.tok.chat_template:
            return [
                str(
                    self.tok.apply_chat_template(
                        [{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False
                    )
                )
                for q, a in pairs
            ]
        return [f"{q}\n\n{a}" for q, a in pairs]

    def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        import torch

        self.tok.padding_side = "left"  # the next-token logits of every row sit at the last position
        enc = self.tok(
            self._texts(pairs),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.config.max_tokens,
        ).to(self.device)
        with torch.no_grad():
            logits = self.model(**enc).logits.float()
        if self.config.kind == "reward":
            return logits[:, 0].cpu().numpy()
        probs = torch.softmax(logits[:, -1, self.digits], dim=-1)
        return (probs @ torch.arange(1, 7, dtype=probs.dtype, device=probs.device)).cpu().numpy()

    def score_rows(self, rows: Iterator[Row], total: int, progress: bool) -> np.ndarray:
        out = np.empty(total, dtype=np.float32)
        batch: list[tuple[str, str]] = []
        done = 0
        for row in tqdm(rows, total=total, desc="select score", unit="row", disable=not progress):
            batch.append((prompt_text(row), response_text(row)))
            if len(batch) == self.config.batch_size:
                out[done : done + len(batch)] = self.score(batch)
                done += len(batch)
                batch = []
        if batch:
            out[done : done + len(batch)] = self.score(batch)
        return out
