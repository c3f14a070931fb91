"""Semantic duplicates: prompts whose sentence embeddings are close in cosine (Platypus: all-MiniLM-L6-v2, 80%).
Off by default; list `semantic_dedup` in `curation.steps` and install the `semantic` extra.

When it runs, the prompts the earlier steps left are read back from the spill, embedded (normalized), and
every row is compared with every earlier row by tiled matrix products: exact, no approximate index, so a
missed pair is the model's judgement and never the search's. The work is n^2 x dim: a GPU job for millions
of rows (4.5M x 384 in float16 is 3.5 GB of embeddings and about 8e15 multiply-adds), minutes on CPU for
about 100k. Duplicate groups keep their best row by the rule the other dedups use."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from prep.dedup.keep import KeepRank, components, duplicate_details, keep_best
from prep.errors import PrepError
from prep.models import model_path
from prep.rows import Row
from prep.spill import Spill
from prep.step import CONTEXT, Context, CorpusStep, Drop
from prep.text import prompt_text

ROW_TILE = 2048  # rows compared at a time ...
COLUMN_TILE = 32768  # ... with this many earlier rows: a 256 MB similarity tile in float32


class SemanticDedupConfig(BaseModel):
    """Prompts close in meaning: cosine of their sentence embeddings, as Platypus did with all-MiniLM-L6-v2
    (80% similarity). Runs only when `semantic_dedup` is listed in `steps`; needs the `semantic` extra."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "sentence-transformers/all-MiniLM-L6-v2", description="hub id or local dir of a sentence-transformers model"
    )
    threshold: float = Field(0.8, gt=0, lt=1, description="cosine similarity at which two prompts are duplicates")
    device: str | None = Field(None, description="torch device; default cuda when there is one, else cpu")
    batch_size: int = Field(256, ge=1, description="prompts embedded at a time")
    max_tokens: int = Field(256, ge=8, description="prompts are cut to this many tokens for the embedding")


class SemanticDedup(CorpusStep):
    name = "semantic_dedup"
    Config = SemanticDedupConfig
    libraries = ("sentence-transformers", "transformers", "tokenizers", "torch", "scipy")

    def __init__(self, config: SemanticDedupConfig, context: Context = CONTEXT) -> None:
        self.config = config
        self.progress = context.progress
        self.explain = context.explain
        self.rank = KeepRank()
        self.stats: dict[str, Any] = {}
        # fail now, not after the whole corpus has been read: the extra is installed and the model is at hand
        if importlib.util.find_spec("sentence_transformers") is None:
            raise PrepError("curation step semantic_dedup needs sentence-transformers: pip install '.[semantic]'")
        self.model_path = model_path(config.model, "semantic_dedup.model")

    def featurize(self, rows: list[Row]) -> None:
        return None  # the embedding runs once, in `run`, on the rows still alive then (and on the GPU if any)

    def observe(self, rows: list[Row], features: None) -> None:
        self.rank.observe(rows)

    def embed(self, live: np.ndarray, spill: Spill) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        device = self.config.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = SentenceTransformer(self.model_path, device=device, trust_remote_code=False)
        model.max_seq_length = self.config.max_tokens
        dtype = torch.float16 if device.startswith("cuda") else torch.float32  # CPUs multiply float16 slowly
        dim = model.get_embedding_dimension()
        assert dim is not None, "a sentence-transformers model ends in a pooling layer"
        out = torch.empty((len(live), dim), dtype=dtype, device=device)
        step = 16 * self.config.batch_size
        for start in tqdm(range(0, len(live), step), desc="semantic embed", unit="block", disable=not self.progress):
            texts = [prompt_text(spill.row(int(i))) for i in live[start : start + step]]
            out[start : start + len(texts)] = model.encode(
                texts, batch_size=self.config.batch_size, convert_to_tensor=True, normalize_embeddings=True
            )
        self.stats["device"] = device
        return out

    def similar_pairs(self, embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
        """(i, j), j < i, for every pair of rows at or above the threshold (positions in `embeddings`), and their
        cosines."""
        import torch

        pairs, cosines = [], []
        n = len(embeddings)
        with torch.no_grad():
            for lo in tqdm(range(0, n, ROW_TILE), desc="semantic compare", unit="tile", disable=not self.progress):
                hi = min(n, lo + ROW_TILE)
                rows = embeddings[lo:hi]
                for left in range(0, hi, COLUMN_TILE):
                    right = min(hi, left + COLUMN_TILE)
                    sims = rows @ embeddings[left:right].T
                    if right > lo:  # the tile reaches the rows themselves: keep only earlier rows (j < i)
                        i = torch.arange(lo, hi, device=sims.device)[:, None]
                        j = torch.arange(left, right, device=sims.device)[None, :]
                        sims = sims.masked_fill(j >= i, 0)
                    a, b = torch.nonzero(sims >= self.config.threshold, as_tuple=True)
                    pairs.append(torch.stack([a + lo, b + left], dim=1).cpu().numpy())
                    cosines.append(sims[a, b].float().cpu().numpy())
        if not pairs:
            return np.empty((0, 2), np.int64), np.empty(0, np.float32)
        return np.concatenate(pairs), np.concatenate(cosines)

    def run(self, alive: np.ndarray, spill: Spill) -> list[Drop]:
        live = np.flatnonzero(alive)
        if not len(live):
            self.stats |= {"rows_compared": 0, "similar_pairs": 0, "dropped": 0}
            return []
        embeddings = self.embed(live, spill)
        at, cosines = self.similar_pairs(embeddings)
        pairs = live[at]
        n = len(alive)
        groups = components(pairs, n)
        dropped, kept = keep_best(groups, self.rank, alive)
        self.stats |= {"rows_compared": len(live), "similar_pairs": len(pairs), "dropped": len(dropped)}
        if not self.explain or not len(dropped):
            return [(int(i), "semantic_duplicate") for i in dropped]
        import torch

        at_dropped, at_kept = (
            torch.from_numpy(np.searchsorted(live, x)).to(embeddings.device) for x in (dropped, kept)
        )
        a, b = embeddings[at_dropped], embeddings[at_kept]
        to_kept = (a.float() * b.float()).sum(dim=1).cpu().numpy()
        details = duplicate_details(spill, dropped, kept, to_kept, pairs, cosines, "cosine", self.config.threshold)
        return [(int(i), "semantic_duplicate", d) for i, d in zip(dropped, details, strict=True)]

    def report(self) -> dict[str, Any]:
        return {"model": self.config.model, "threshold": self.config.threshold, **self.stats}
