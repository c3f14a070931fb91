"""One row of the preflight table, and the report the checks add up to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prep.sizing.estimate import Estimate
from prep.sizing.runtime import RunTime


@dataclass(frozen=True)
class Finding:
    check: str  # an override name (gpu_memory, host_ram, disk, datasets, model, time, recipe_keys) or "info"
    label: str
    need: str
    have: str
    status: str  # ok | fail | warn | skip | info
    note: str = ""


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    estimate: Estimate | None
    time: RunTime | None = None
    evals: dict[str, Any] | None = None  # the per-epoch evals' tokens and time, when counted

    def refusals(self, override: list[str]) -> list[Finding]:
        if "all" in override:
            return []
        return [f for f in self.findings if f.status == "fail" and f.check not in override]


def fmt(n: float) -> str:
    """Binary units, as nvidia-smi, free and df -h report them."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}" if unit == "TiB" else f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"
