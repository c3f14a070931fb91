"""Instruction-following difficulty (IFD; Li et al., "From Quantity to Quality", NAACL 2024; Superfiltering,
ACL 2024): IFD = PPL(answer | instruction) / PPL(answer) under a causal LM. Near 0: the instruction makes the
answer easy to predict; near 1: the instruction barely helps; >= 1: the answer is no easier to predict with the
instruction than without it, which the papers read as an answer that does not follow its instruction and drop.

Computed as Superfiltering's code does with a small model (tianyi-lab/Superfiltering, code_ifd/
data_analysis.py, its `none` template for GPT-2): the prompt is the instruction followed by a newline (here
every turn before the last answer, joined by newlines), the conditional text is prompt + answer, cut to
`max_tokens`, and its loss counts the answer's tokens only; the answer alone is cut to `max_tokens` minus the
prompt's tokens plus one, and its loss counts every token after the first (nothing predicts the first). An
answer of a single token, or one the cut leaves no token of, has no IFD (NaN; the papers' selection never
picks such rows). No chat template: the papers score plain text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm import tqdm

from prep.rows import Row

TEMPLATE = "{instruction}\n"  # Superfiltering's `none` prompt (its `prompt_no_input`)


def instruction_answer(row: Row) -> tuple[str, str]:
    """Every turn before the last answer (system, human and earlier gpt turns), joined by newlines, and the
    last answer."""
    *context, last = row.conversations
    return "\n".join(t["value"] for t in context), last["value"]


class IfdScorer:
    """IFD per (instruction, answer) with a causal LM, a length-sorted batch at a time."""

    def __init__(self, tok: Any, model: Any, batch_size: int, max_tokens: int) -> None:
        self.tok = tok
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    @classmethod
    def load(cls, path: str, device: str | None, batch_size: int, max_tokens: int) -> IfdScorer:
        """The model of a local directory, in bfloat16 on a GPU (the default when there is one), else float32."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=False)
        return cls(tok, model.to(device), batch_size, max_tokens)

    def encode(self, instruction: str, answer: str) -> tuple[list[int], int, list[int]] | None:
        """(conditional ids, where the answer starts in them, answer-alone ids), or None when no answer token
        can be scored."""
        prompt = TEMPLATE.format(instruction=instruction)
        whole = self.tok.encode(prompt + answer, add_special_tokens=True)[: self.max_tokens]
        start = len(self.tok.encode(prompt, add_special_tokens=True))
        alone = self.tok.encode(answer, add_special_tokens=True)[: max(0, self.max_tokens - start + 1)]
        if start >= len(whole) or len(alone) < 2:
            return None
        return whole, start, alone

    def losses(self, sequences: list[tuple[list[int], int]]) -> np.ndarray:
        """Mean token loss of each (ids, first scored position) in one padded forward pass."""
        import torch

        width = max(len(ids) for ids, _ in sequences)
        ids = torch.zeros((len(sequences), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, (seq, start) in enumerate(sequences):
            ids[i, : len(seq)] = torch.tensor(seq)
            mask[i, : len(seq)] = 1
            labels[i, start : len(seq)] = ids[i, start : len(seq)]
        with torch.no_grad():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
        labels = labels.to(self.device)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2), labels[:, 1:], ignore_index=-100, reduction="none"
        )
        counted = (labels[:, 1:] != -100).sum(dim=1)
        return (loss.sum(dim=1) / counted).cpu().numpy()

    def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """IFD of each (instruction, answer); NaN where no answer token can be scored."""
        encoded = [self.encode(q, a) for q, a in pairs]
        out = np.full(len(pairs), np.nan)
        todo = [i for i, e in enumerate(encoded) if e is not None]
        todo.sort(key=lambda i: len(encoded[i][0]))  # type: ignore[index]  # batches of similar length
        for lo in range(0, len(todo), self.batch_size):
            part = todo[lo : lo + self.batch_size]
            parts = [encoded[i] for i in part]
            cond = self.losses([(whole, start) for whole, start, _ in parts])  # type: ignore[misc]
            alone = self.losses([(a, 1) for _, _, a in parts])  # type: ignore[misc]
            out[part] = np.exp(cond - alone)  # PPL ratio: exp(mean loss) over exp(mean loss)
        return out

    def score_rows(self, rows: Iterator[Row], total: int, progress: bool) -> np.ndarray:
        out = np.empty(total, dtype=np.float64)
        chunk = 64 * self.batch_size  # rows read back at a time, so batches can be sorted by length
        pairs: list[tuple[str, str]] = []
        done = 0
        for row in tqdm(rows, total=total, desc="select ifd", unit="row", disable=not progress):
            pairs.append(instruction_answer(row))
            if len(pairs) == chunk:
                out[done : done + len(pairs)] = self.score(pairs)
                done += len(pairs)
                pairs = []
        if pairs:
            out[done : done + len(pairs)] = self.score(pairs)
        return out
