"""The published runs the time model is checked against (published_runs.yml), each turned into what a user would
type: a recipe copy and a `prep fit` command line. bench/published_runs.py prints the table,
tests/prep/sizing/test_runtime_validation.py checks it against prep/sizing/accuracy.py."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from prep.yamlio import load_yaml

RUNS_FILE = Path(__file__).with_name("published_runs.yml")


@dataclass(frozen=True)
class PublishedRun:
    id: str
    source: str
    stack: str
    model: str
    model_config: Mapping[str, Any]
    hardware: Mapping[str, Any]
    recipe: Mapping[str, Any]
    tokens: float
    rows: int | None
    published: Mapping[str, float]
    calibrates: str | None

    @property
    def epochs(self) -> float:
        return float(self.recipe.get("num_epochs", 1))

    @property
    def published_seconds(self) -> float:
        """The run's published wall-clock, or its token count over the published throughput."""
        if "seconds" in self.published:
            return float(self.published["seconds"])
        return self.tokens * self.epochs / float(self.published["tokens_per_second"])

    def fit_args(self, work: Path) -> list[str]:
        """Write the model's config.json and the recipe copy under `work`; the `prep fit` arguments that time it."""
        model = work / self.model
        model.mkdir(parents=True, exist_ok=True)
        (model / "config.json").write_text(json.dumps(dict(self.model_config)))
        recipe = work / f"{self.id}.yml"
        body = {"base_model": str(model), "datasets": [], "bf16": True, "output_dir": str(work / "out"), **self.recipe}
        recipe.write_text(yaml.safe_dump(body, sort_keys=False))
        hw = self.hardware
        args = ["fit", str(recipe), "--gpu-type", hw["gpu"], "--gpus", str(hw["gpus_per_node"])]
        args += ["--nodes", str(hw["nodes"]), "--tokens-per-epoch", repr(float(self.tokens)), "--json"]
        args += ["--run-dir", str(work), "--ram", "100000", "--disk", "100000"]
        if self.rows is not None:
            args += ["--rows-per-epoch", str(self.rows)]
        if hw.get("inter_node_gbps"):
            args += ["--inter-node-gbps", str(hw["inter_node_gbps"])]
        return args


def load_runs(path: Path = RUNS_FILE) -> list[PublishedRun]:
    data = load_yaml(path)
    models = data["models"]
    return [
        PublishedRun(
            id=r["id"],
            source=r["source"],
            stack=r["stack"],
            model=r["model"],
            model_config=models[r["model"]],
            hardware=r["hardware"],
            recipe=r["recipe"],
            tokens=float(r["tokens"]),
            rows=r.get("rows"),
            published=r["published"],
            calibrates=r.get("calibrates"),
        )
        for r in data["runs"]
    ]


@dataclass(frozen=True)
class RegimeStats:
    regime: str
    ratios: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def low(self) -> float:
        return min(self.ratios)

    @property
    def high(self) -> float:
        return max(self.ratios)


def regime_stats(rows: Iterable[tuple[str, float, bool]]) -> dict[str, RegimeStats]:
    """(regime, predicted/published, calibrates something) per run -> the ratios of the runs that set nothing."""
    out: dict[str, RegimeStats] = {}
    for regime, ratio, calibration in rows:
        if not calibration:
            out.setdefault(regime, RegimeStats(regime, [])).ratios.append(ratio)
    return out
