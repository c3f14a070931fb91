"""The epoch_eval modes by the name `epoch_eval.mode` uses: a mode is a module here with its `Mode` subclass
(modes/base.py says what one does) plus one line below, and its row in the mode table (prep/sizing/eval_modes.py)."""

from __future__ import annotations

from plugins.epoch_eval.modes.base import Mode
from plugins.epoch_eval.modes.queue import Queue
from plugins.epoch_eval.modes.same_node import SameNode
from plugins.epoch_eval.modes.slurm import Slurm

MODES: dict[str, type[Mode]] = {mode.name: mode for mode in (SameNode, Queue, Slurm)}
