"""slurm mode: each epoch's job is a batch script submitted with sbatch (evals/slurm.py); training waits only when
max_pending_checkpoints await, and at the end for the last evals when `slurm.wait_at_end` asks."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from evals import report, slurm
from evals.errors import EvalsError
from evals.jobs import job_path
from evals.spec import EvalJob
from evals.status import EpochStatus
from plugins.epoch_eval.args import EpochEvalConfig
from plugins.epoch_eval.modes.base import Mode

LOG = logging.getLogger(__name__)


class Slurm(Mode):
    name = "slurm"
    asks_scheduler = True

    @classmethod
    def refuse(cls, config: EpochEvalConfig, cfg: Any, run_dir: Path) -> None:
        slurm.check_template(config.slurm, Path(cfg.output_dir))

    @classmethod
    def job_fields(cls, config: EpochEvalConfig) -> dict[str, Any]:
        return {"slurm": config.slurm}

    def hand_over(self, state, epoch, step, checkpoint, kwargs, gpus) -> None:
        try:
            slurm.submit(self.run.job(epoch, step, checkpoint).save(job_path(self.run.output_dir, epoch)))
        except EvalsError as exc:  # the job file keeps the refusal; reconcile retries it
            LOG.error(
                "epoch_eval: epoch %d: %s; training goes on, and the job is submitted again "
                "whenever training looks at its evals (until the refusals span %.0f min)",
                epoch,
                exc,
                slurm.SBATCH_PATIENCE_S / 60,
            )

    def end(self) -> None:
        if self.run.config.slurm.wait_at_end:
            out = self.run.output_dir
            self.run.waiter.all_scored(
                lambda: self.run.config.eval_base_model and not report.report_path(out, 0).is_file()
            )

    def refresh(self) -> None:
        slurm.reconcile(self.run.output_dir)

    def unblock_hint(self) -> str:
        return f"`evals status {self.run.output_dir}` shows the Slurm jobs (squeue for why they are pending)"

    def withdraw(self, row: EpochStatus, reason: str) -> EvalJob | None:
        if row.state != "queued":
            return None
        job = EvalJob.load(job_path(self.run.output_dir, row.epoch))
        if job.submissions and (scancel := shutil.which("scancel")):
            subprocess.run([scancel, job.submissions[-1].job_id], capture_output=True, check=False)
        return job
