"""Checkpoint rotation that never deletes a checkpoint before its eval ran.

The Trainer rotates at the end of every save (transformers' `rotate_checkpoints`: keep the newest
`save_total_limit`, the most recent and the best one), before any callback runs, and knows nothing of
evals queued elsewhere. So the plugin takes the limit over (the Trainer's is set to None) and rotates in
`on_save` the same way, with the checkpoints whose eval is queued or running left out of the count:
they stay, beyond the limit, until scored (done, or failed for good), then rotate like any other.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from transformers.trainer_utils import sort_checkpoints

LOG = logging.getLogger(__name__)


def rotate(run_dir: str, limit: int | None, best: str | None, held: set[str]) -> list[str]:
    """Delete the oldest checkpoints beyond `limit`, never a held one, the most recent or the best;
    returns the deleted directories."""
    if limit is None or limit <= 0:
        return []
    everything = sort_checkpoints(run_dir, use_mtime=True)  # the Trainer's own order
    if not everything:
        return []
    keep = {everything[-1], *([str(Path(best))] if best else [])}
    candidates = [c for c in everything if str(Path(c).resolve()) not in held]
    deleted: list[str] = []
    for checkpoint in candidates:
        if len(candidates) - len(deleted) <= limit:
            break
        if checkpoint not in keep:
            shutil.rmtree(checkpoint, ignore_errors=True)
            deleted.append(checkpoint)
    if deleted:
        LOG.info("epoch_eval: rotated out %s (save_total_limit %d; %d held for evals)", deleted, limit, len(held))
    return deleted
