"""Training waiting for evals that run elsewhere (queue, slurm): at an epoch end for room among the held
checkpoints, and (slurm, wait_at_end) at the end of training for the last evals. Never silent: it says at once
what it waits for and the command that would unblock it, then again every `remind_s` (at most 10 minutes) with
how long it has waited. `max_wait` bounds one wait; then `on_max_wait` either stops training with that error,
or withdraws the evals nobody has started (their epochs get a failed report, 'unscored') and lets it go on.

Runs on rank 0 only; the other ranks wait for its verdict on a file (ranks.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from evals import report
from evals.jobs import failed_report
from evals.status import EpochStatus
from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.modes.base import Mode
from plugins.epoch_eval.ranks import elapsed

LOG = logging.getLogger(__name__)


class WaitedTooLong(SystemExit):
    """max_wait ran out with on_max_wait: fail. A condition the user chose, not a bug: training ends with this
    one line (SystemExit), no traceback."""


def _held(rows: list[EpochStatus]) -> list[EpochStatus]:
    return [r for r in rows if r.held]


class Waiter:
    def __init__(self, config: EpochEvalConfig, mode: Mode) -> None:
        self.config = config
        self.mode = mode  # what holds the evals, and how to take one back

    def until(self, done: Callable[[list[EpochStatus]], bool], what: str) -> None:
        """Poll the evals until `done(rows of the held epochs)`; say so now and every remind_s; apply max_wait."""
        began = time.monotonic()
        said = None
        while True:
            self.mode.refresh()
            held = _held(self.mode.statuses())
            if done(held):
                if said is not None:
                    LOG.info("epoch_eval: the wait %s ended after %s", what, elapsed(time.monotonic() - began))
                return
            waited = time.monotonic() - began
            if said is None or time.monotonic() - said >= self.config.remind_s:
                LOG.warning("%s", self.message(held, what, waited))
                said = time.monotonic()
            if self.config.max_wait is not None and waited >= self.config.max_wait:
                self.give_up(held, what, waited)
                return
            time.sleep(min(self.config.poll_s, self.config.remind_s))

    def message(self, held: list[EpochStatus], what: str, waited: float) -> str:
        states = ", ".join(f"epoch {r.epoch} {r.state}" + (f" ({r.scheduler})" if r.scheduler != "-" else "")
                           for r in held)  # fmt: skip
        bound = (
            f"; after max_wait {elapsed(self.config.max_wait)} it will "
            + ("stop training" if self.config.on_max_wait == "fail" else "withdraw the unstarted evals and go on")
            if self.config.max_wait is not None
            else ""
        )
        return (
            f"epoch_eval: training waits {what}: {len(held)} eval(s) not finished [{states}]; "
            f"{self.mode.unblock_hint()}. Waited {elapsed(waited)} so far{bound}."
        )

    def give_up(self, held: list[EpochStatus], what: str, waited: float) -> None:
        if self.config.on_max_wait == "fail":
            raise WaitedTooLong(
                f"epoch_eval: waited {elapsed(waited)} (max_wait) {what}; evals not finished: "
                + ", ".join(f"epoch {r.epoch} {r.state}" for r in held)
                + f". {self.mode.unblock_hint()}, then resume training "
                "(auto_resume_from_checkpoints: true): the epochs without a report are scored first"
            )
        withdrawn = [r.epoch for r in held if self.withdraw(r, waited)]
        LOG.error(
            "epoch_eval: waited %s (max_wait) %s; on_max_wait is continue: epoch(s) %s withdrawn unscored "
            "(failed reports say so); training goes on%s",
            elapsed(waited),
            what,
            withdrawn or "none",
            "" if len(withdrawn) == len(held) else " while the running evals finish",
        )

    def withdraw(self, row: EpochStatus, waited: float) -> bool:
        """Take back an eval nobody has started: a queued job (pending/), a Slurm job still pending. A running
        one is left to finish. Its epoch gets a failed report saying it went unscored."""
        reason = RuntimeError(
            f"unscored: no eval started within max_wait ({elapsed(waited)}); training went on (on_max_wait: continue)"
        )
        job = self.mode.withdraw(row, str(reason))
        if job is None or report.report_path(job.output_dir, row.epoch).is_file():
            return False
        failed_report(job, reason, time.time(), where={"name": "withdrawn", "job_id": "-"})
        return True

    def room(self, max_pending: int) -> None:
        self.until(
            lambda held: sum(r.epoch > 0 for r in held) < max_pending,
            "at an epoch end for room among the held checkpoints",
        )

    def all_scored(self, base_pending: Callable[[], bool]) -> None:
        self.until(lambda held: not held and not base_pending(), "at the end of training for the last evals")
