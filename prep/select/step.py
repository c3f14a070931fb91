"""The `select` corpus step: per row, in the workers, a bag of prompt words (hashing backend) and a quality
score; when it runs, clusters of the rows still alive, a quota per cluster, and the best rows of each cluster
until the budget is full. Rows past the budget are dropped as `select_budget`. Memory: about 5 bytes a prompt
term (32 at most) plus 12 bytes a row (score, teacher, length); 0.6 GB at 4.5M rows."""

from __future__ import annotations

import importlib.util
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from tqdm import tqdm

from prep.errors import PrepError
from prep.lengths import TokenCounter
from prep.models import model_path
from prep.rows import Row
from prep.select.config import SelectConfig
from prep.select.ifd import IfdScorer
from prep.select.score import TEACHER, ModelScorer, heuristic_scores, rank_normalize
from prep.spill import Spill
from prep.step import CONTEXT, Context, CorpusStep, Drop
from prep.text import prompt_text
from prep.tokens import DEFAULT_TEMPLATE, ChatTokens

if TYPE_CHECKING:
    from prep.select.embed import Embedder

# cluster and embed (numba, scikit-learn, scipy) are imported where a build uses them, not to check a config

LABEL_ROWS = 50  # prompts read back per cluster to name it
HISTOGRAM_BINS = 20


def within(source: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each score as its rank among its own source's scores, in [0, 1] (a source of one row: 1)."""
    out = np.empty(len(scores), dtype=np.float32)
    for s in np.unique(source):
        mine = source == s
        out[mine] = rank_normalize(scores[mine])
    return out


def ifd_summary(ifd: np.ndarray, misaligned: np.ndarray) -> dict[str, Any]:
    scored = ifd[~np.isnan(ifd)]
    p10, p50, p90 = np.percentile(scored, [10, 50, 90]).round(4).tolist() if len(scored) else (None,) * 3
    return {"rows": len(ifd), "unscored": int(np.isnan(ifd).sum()), "misaligned": int(misaligned.sum())} | {
        "p10": p10,
        "p50": p50,
        "p90": p90,
    }


def summary(x: np.ndarray) -> dict[str, Any]:
    if not len(x):
        return {"rows": 0}
    p10, p50, p90 = np.percentile(x, [10, 50, 90]).tolist()
    hist = np.histogram(x, bins=HISTOGRAM_BINS, range=(0, 1))[0].tolist()
    return {"rows": len(x), "mean": round(float(x.mean()), 4), "p10": round(p10, 4), "p50": round(p50, 4)} | {
        "p90": round(p90, 4),
        "histogram": hist,
    }


class Select(CorpusStep):
    name = "select"
    Config = SelectConfig
    libraries = ("scikit-learn", "scipy")  # k-means, SVD, the labels; a model backend adds its own (below)

    def __init__(self, config: SelectConfig, context: Context = CONTEXT) -> None:
        self.config = config
        self.sources = list(context.sources)
        self.seed = context.seed
        self.counter = context.counter or TokenCounter(None)
        self.progress = context.progress
        self.hashing = config.embed.backend == "hashing"
        from prep.select.embed import Bags

        self.bags = Bags()
        self.scores = array("f")
        self.teacher = array("f")
        self.lengths = array("i")  # tokens in the recipes' chat template (token budget), else as `length` counts
        self._report: dict[str, Any] = {}
        self.chat: ChatTokens | None = None  # a token budget counts as Axolotl will (chat template, special tokens)
        if config.budget and config.budget.tokens:
            if self.counter.tokenizer is None:
                raise PrepError("select.budget.tokens counts tokens: set curation.tokenizer (or give budget.rows)")
            self.chat = ChatTokens(self.counter.tokenizer, DEFAULT_TEMPLATE.read_text(encoding="utf-8"))
        # fail now, not after the corpus is read: the extra is installed and the models are at hand
        self.embed_model = None
        if not self.hashing:
            if importlib.util.find_spec("sentence_transformers") is None:
                raise PrepError("select.embed.backend sentence_transformers needs: pip install '.[semantic]'")
            self.embed_model = model_path(config.embed.model, "select.embed.model")
        if unknown := sorted(set(config.floors) - set(self.sources)):
            raise PrepError(f"select.floors: no source named {', '.join(map(repr, unknown))}; sources: {self.sources}")
        self.explain = context.explain
        self.scorer_model = model_path(config.scorer.model, "select.scorer.model") if config.scorer else None
        if self.embed_model or self.scorer_model:  # what decides the rows depends on this step's config
            models = ("sentence-transformers",) if self.embed_model else ()
            self.libraries = (*Select.libraries, *models, "transformers", "tokenizers", "torch")  # type: ignore[misc]

    def featurize(self, rows: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bag columns, bag counts, bag sizes, scores, lengths) of the batch."""
        if self.hashing:
            from prep.select.embed import prompt_bags

            cols, counts, sizes = prompt_bags(rows, self.config.embed.terms)
        else:
            cols, counts, sizes = np.empty(0, np.uint32), np.empty(0, np.uint8), np.zeros(len(rows), np.uint8)
        if self.chat is not None:
            lengths = np.array(
                [self.chat.count(cast(list[Mapping[str, str]], r.conversations))[0] for r in rows], dtype=np.int32
            )
        else:  # the length step's count, memoized on the row
            lengths = np.array([sum(self.counter.prompt_response(r)) for r in rows], dtype=np.int32)
        return cols, counts, sizes, heuristic_scores(rows, self.config.weights), lengths

    def observe(self, rows: list[Row], features: tuple[np.ndarray, ...]) -> None:
        cols, counts, sizes, scores, lengths = features
        self.bags.extend(cols, counts, sizes)
        self.scores.frombytes(scores.tobytes())
        self.lengths.frombytes(lengths.tobytes())
        self.teacher.extend(TEACHER.get(r.teacher or "", 0.5) for r in rows)

    def embedder(self, alive: np.ndarray, spill: Spill) -> Embedder:
        from prep.select.embed import HashingEmbedder, SentenceEmbedder

        if self.hashing:
            return HashingEmbedder(self.bags, self.config.embed, alive, self.seed)
        assert self.embed_model is not None
        return SentenceEmbedder(self.config.embed, self.embed_model, spill)

    def row_scores(self, live: np.ndarray, spill: Spill) -> tuple[np.ndarray, np.ndarray]:
        """Each live row's score (the signals, with the model scorer's rank blended in), and the IFD of each
        (NaN without the ifd scorer)."""
        scores = np.frombuffer(self.scores, dtype=np.float32)[live]
        ifd = np.full(len(live), np.nan)
        cfg = self.config.scorer
        if cfg is None or not len(live):
            return scores, ifd
        assert self.scorer_model is not None
        rows = (spill.row(int(i)) for i in live)
        if cfg.kind == "ifd":
            scorer = IfdScorer.load(self.scorer_model, cfg.device, cfg.batch_size, cfg.max_tokens)
            ifd = scorer.score_rows(rows, len(live), self.progress)
            model = rank_normalize(-ifd if cfg.prefer == "aligned" else ifd)
        else:
            model = rank_normalize(ModelScorer(cfg, self.scorer_model).score_rows(rows, len(live), self.progress))
        self._report["scorer"] = {"kind": cfg.kind, "model": cfg.model}
        w, wm = sum(self.config.weights.model_dump().values()), cfg.weight
        return ((scores * w + model * wm) / max(w + wm, 1e-9)).astype(np.float32), ifd

    def labels(self, live: np.ndarray, clusters: np.ndarray, k: int, spill: Spill) -> list[str]:
        """Top terms of a seeded sample of each cluster's prompts."""
        from prep.select import cluster

        rng = np.random.default_rng(self.seed)
        texts: list[list[str]] = []
        for c in tqdm(range(k), desc="select labels", unit="cluster", disable=not self.progress):
            members = live[clusters == c]
            pick = np.sort(rng.choice(members, size=min(LABEL_ROWS, len(members)), replace=False))
            texts.append([prompt_text(spill.row(int(i))) for i in pick])
        return cluster.labels(texts)

    def run(self, alive: np.ndarray, spill: Spill) -> list[Drop]:
        from prep.select import cluster

        live = np.flatnonzero(alive)
        if not len(live):
            self._report = {"rows_before": 0, "rows_after": 0}
            return []
        scores, ifd = self.row_scores(live, spill)
        drops: list[Drop] = []
        if self.config.scorer is not None and self.config.scorer.kind == "ifd":
            limit = self.config.scorer.max_ifd
            misaligned = ifd >= limit  # NaN (no answer token to score) is not
            drops = [
                (int(i), "select_misaligned", f"IFD {x:.3f} >= max_ifd {limit}")
                if self.explain
                else (int(i), "select_misaligned")
                for i, x in zip(live[misaligned], ifd[misaligned], strict=True)
            ]
            self._report["ifd"] = ifd_summary(ifd, misaligned)
            live, scores, alive = live[~misaligned], scores[~misaligned], alive.copy()
            alive[[d[0] for d in drops]] = False
            if not len(live):
                self._report |= {"rows_before": 0, "rows_after": 0}
                return drops
        source = np.frombuffer(spill.sources, dtype=np.uint16)[live].astype(np.int64)
        ranking = within(source, scores) if self.config.score_scope == "source" else scores  # what orders the fill
        k = self.config.clusters or cluster.default_clusters(len(live))
        clusters = cluster.assign(self.embedder(alive, spill), live, k, self.config.fit_rows, self.seed)
        k = int(clusters.max()) + 1
        tokens = np.frombuffer(self.lengths, dtype=np.int32)[live].astype(np.int64)
        budget = self.config.budget
        keep = np.ones(len(live), dtype=bool)
        quota = None
        if budget is not None:
            size = np.ones(len(live), dtype=np.int64) if budget.rows else tokens
            limit = budget.rows or budget.tokens
            assert limit is not None
            quota = cluster.quotas(np.bincount(clusters, weights=size, minlength=k), limit, self.config.alpha)
            order = cluster.fill_order(clusters, ranking, size, quota)
            order = self.floors_first(order, source)
            taken = np.searchsorted(np.cumsum(size[order]), limit, side="right")
            keep[:] = False
            keep[order[:taken]] = True
        self._report |= self.describe(live, clusters, k, scores, tokens, keep, quota, spill)
        return drops + [(int(i), "select_budget") for i in live[~keep]]

    def floors(self, source: np.ndarray) -> np.ndarray:
        """Rows each source is owed by `floors` (ceil of its share of the source's rows here), by source index."""
        n = np.bincount(source, minlength=len(self.sources))
        shares = np.array([self.config.floors.get(name, 0.0) for name in self.sources])
        return np.ceil(shares * n - 1e-9).astype(np.int64)

    def floors_first(self, order: np.ndarray, source: np.ndarray) -> np.ndarray:
        """`order` with each floored source's first rows in it (as many as its floor) moved ahead of the rest,
        both parts keeping their order: the budget takes the floors first, then fills as before."""
        if not self.config.floors:
            return order
        s = source[order]
        by_source = np.argsort(s, kind="stable")
        counts = np.bincount(s, minlength=len(self.sources))
        rank = np.empty(len(order), dtype=np.int64)
        rank[by_source] = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
        owed = rank < self.floors(source)[s]
        return np.concatenate([order[owed], order[~owed]])

    def describe(
        self,
        live: np.ndarray,
        clusters: np.ndarray,
        k: int,
        scores: np.ndarray,
        tokens: np.ndarray,
        keep: np.ndarray,
        quota: np.ndarray | None,
        spill: Spill,
    ) -> dict[str, Any]:
        """The manifest's `steps.select`: what the card shows."""
        from prep.select import cluster

        source = np.frombuffer(spill.sources, dtype=np.uint16)[live]
        teacher = np.frombuffer(self.teacher, dtype=np.float32)[live]
        names = self.labels(live, clusters, k, spill)

        def counts(by: np.ndarray, n: int, mask: np.ndarray) -> tuple[list[int], list[int]]:
            rows = np.bincount(by[mask], minlength=n)
            return rows.tolist(), np.bincount(by[mask], weights=tokens[mask], minlength=n).astype(np.int64).tolist()

        everything = np.ones(len(live), dtype=bool)
        rows_b, tok_b = counts(clusters, k, everything)
        rows_a, tok_a = counts(clusters, k, keep)
        mean_b = np.bincount(clusters, weights=scores, minlength=k) / np.maximum(rows_b, 1)
        src_rb, src_tb = counts(source.astype(np.int64), len(self.sources), everything)
        src_ra, src_ta = counts(source.astype(np.int64), len(self.sources), keep)
        mix = np.bincount(clusters * len(self.sources) + source.astype(np.int64), minlength=k * len(self.sources))
        mix = mix.reshape(k, len(self.sources))  # rows before selection, by cluster and source
        cfg = self.config
        return {
            "budget": cfg.budget.model_dump(exclude_none=True) if cfg.budget else None,
            "unit": "tokens (chat template)" if self.chat else self.counter.unit,
            "embed": cfg.embed.backend if self.hashing else f"sentence_transformers {cfg.embed.model}",
            "alpha": cfg.alpha,
            "clusters": k,
            "rows_before": len(live),
            "rows_after": int(keep.sum()),
            "tokens_before": int(tokens.sum()),
            "tokens_after": int(tokens[keep].sum()),
            "dropped": int((~keep).sum()),
            "variety_before": round(cluster.variety(np.array(rows_b)), 3),
            "variety_after": round(cluster.variety(np.array(rows_a)), 3),
            "gpt4_share_before": round(float((teacher == 1).mean()), 4),
            "gpt4_share_after": round(float((teacher[keep] == 1).mean()) if keep.any() else 0.0, 4),
            "weights": cfg.weights.model_dump(),
            "score_scope": cfg.score_scope,
            "floors": {
                n: {"share": cfg.floors[n], "rows": int(f), "kept": src_ra[i]}
                for i, (n, f) in enumerate(zip(self.sources, self.floors(source), strict=True))
                if n in cfg.floors
            },
            "scores_before": summary(scores),
            "scores_after": summary(scores[keep]),
            "per_source": {
                n: {"rows_before": rb, "rows_after": ra, "tokens_before": tb, "tokens_after": ta}
                for n, rb, ra, tb, ta in zip(self.sources, src_rb, src_ra, src_tb, src_ta, strict=True)
            },
            "per_cluster": [
                {
                    "cluster": c,
                    "label": names[c],
                    "rows_before": rows_b[c],
                    "rows_after": rows_a[c],
                    "tokens_before": tok_b[c],
                    "tokens_after": tok_a[c],
                    "quota": round(float(quota[c]), 1) if quota is not None else None,
                    "mean_score": round(float(mean_b[c]), 4),
                    "sources": {n: int(r) for n, r in zip(self.sources, mix[c], strict=True) if r},
                }
                for c in range(k)
            ],
        }

    def report(self) -> dict[str, Any]:
        return self._report
