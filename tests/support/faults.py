"""Kills a training launch at an exact point, as `kill -9` of the job (or a lost node) would: SIGKILL to the
launch's whole process group (the launcher, every rank, an eval child), from rank 0. The test starts the launch
in a session of its own. Where, from EPOCH_EVAL_TEST_KILL:

- `train:<step>`: after optimizer step <step>, before any save of it;
- `saved:<step>`: once the checkpoint of step <step> is written, before the epoch_eval plugin sees the save (this
  plugin is listed before it, so its callback runs first);
- `eval:<step>`: while the eval of the checkpoint of step <step> runs (the main thread is inside the in-memory
  eval, or waiting on the eval's child process), found by looking at the main thread's stack.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

ENV = "EPOCH_EVAL_TEST_KILL"
EVAL_FRAMES = {"evaluate_in_memory", "run_in_subprocess"}


def kill_launch() -> None:
    sys.stderr.write(f"faults: killing the launch (process group {os.getpgid(0)}) now\n")
    sys.stderr.flush()
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _in_eval(main: threading.Thread) -> bool:
    frame = sys._current_frames().get(main.ident or -1)
    while frame is not None:
        if frame.f_code.co_name in EVAL_FRAMES:
            return True
        frame = frame.f_back
    return False


class Faults(TrainerCallback):
    def __init__(self, point: str, step: int) -> None:
        self.point, self.step = point, step

    def on_step_end(self, args, state, control, **kwargs):
        if self.point == "train" and state.global_step == self.step:
            kill_launch()

    def on_save(self, args, state, control, **kwargs):
        if state.global_step != self.step:
            return
        if self.point == "saved":
            kill_launch()
        if self.point == "eval":
            main = threading.current_thread()

            def watch() -> None:
                while not _in_eval(main):
                    time.sleep(0.005)
                kill_launch()

            threading.Thread(target=watch, daemon=True).start()


class FaultsPlugin(BasePlugin):
    def add_callbacks_post_trainer(self, cfg, trainer) -> list:
        spec = os.environ.get(ENV)
        if not spec or os.environ.get("RANK", "0") != "0":
            return []
        point, step = spec.split(":")
        return [Faults(point, int(step))]
