"""How far the time model is from published runs, by regime: the band every time estimate carries.

The figures are predicted / published time over the runs of prep/sizing/published_runs.yml that calibrate nothing
(`python bench/published_runs.py` prints them; tests/prep/sizing/test_runtime_validation.py keeps these constants equal to
what the table gives). Below 1 the model is optimistic: the run takes longer than predicted.
"""

from __future__ import annotations

from dataclasses import dataclass

from prep.sizing.plan import Plan

SHORT_MICRO_BATCH = 1024  # tokens per micro batch (padding included) under which fixed per-step costs dominate
MIN_RUNS = 3  # published runs a regime needs before its range is stated as a band


@dataclass(frozen=True)
class Band:
    regime: str
    label: str
    runs: int  # published runs of this regime that set nothing in the model
    median: float  # of predicted / published time
    low: float
    high: float

    @property
    def bounded(self) -> bool:
        return self.runs >= MIN_RUNS

    def expect(self, seconds: float) -> tuple[float, float] | None:
        """The range the real time falls in, were this run as far off as the published ones; None when too few
        published runs are like it to say."""
        return (seconds / self.high, seconds / self.low) if self.bounded else None

    def describe(self) -> str:
        if self.runs == 0:
            return f"{self.label}: no published run outside the calibration to check the model on, error unknown"
        if not self.bounded:
            ratios = "one run" if self.runs == 1 else f"{self.runs} runs"
            return (
                f"{self.label}: the model gave x{self.median:.2f} the published time on the {ratios} like this, "
                "too few to bound its error"
            )
        return (
            f"{self.label}: the model gave x{self.low:.2f}-x{self.high:.2f} the published time "
            f"(median x{self.median:.2f}) over {self.runs} runs"
        )


BANDS = {
    b.regime: b
    for b in (
        Band("one_node", "one node, >= 1,024 tokens per micro batch", 11, 0.94, 0.75, 1.30),
        Band("multi_node", "several nodes", 5, 1.10, 0.93, 2.54),
        Band("offload", "optimizer / parameter offload to the CPU", 1, 1.37, 1.37, 1.37),
        Band("int8", "8-bit base model (LLM.int8)", 0, 1.0, 1.0, 1.0),
        Band("short", f"micro batches under {SHORT_MICRO_BATCH:,} tokens", 1, 0.08, 0.08, 0.08),
    )
}


def regime(plan: Plan, nodes: int, tokens_per_micro_batch: float) -> Band:
    """The published runs a plan is judged by: offload, then an 8-bit base, then short micro batches, then the
    number of nodes, as those dominate the error in that order."""
    if plan.sharding.offload_optimizer or plan.sharding.offload_param:
        return BANDS["offload"]
    if plan.adapter and plan.quant_bits == 8:
        return BANDS["int8"]
    if tokens_per_micro_batch < SHORT_MICRO_BATCH:
        return BANDS["short"]
    return BANDS["multi_node" if nodes > 1 else "one_node"]
