"""Ctrl-C and SIGTERM as exceptions in the main process, so every `with` block (workers, spill, temps) cleans
up on the way out; a second signal while that runs is ignored rather than cutting the cleanup short."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException like KeyboardInterrupt, so `except Exception` does not swallow it)."""


def _raise(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if signum == signal.SIGTERM:
        raise Terminated()
    raise KeyboardInterrupt()


Handler = Callable[[int, FrameType | None], None]


@contextmanager
def handling(handler: Handler, then: Handler | None = None) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` inside the block; after it, to `then` if the block completed (with
    no gap between the two), else to the handlers from before it."""
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    completed = False
    try:
        yield
        completed = True
    finally:
        for s, previous in old.items():
            signal.signal(s, then if completed and then is not None else previous)


def _done(signum: int, frame: FrameType | None) -> None:
    """The command's work is done and the process only exits: a signal now ends it with the command's 0
    (Python's default would end it 'killed' with every output already complete)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, RuntimeError, ValueError):  # a closed pipe; a flush the signal itself interrupted
        pass
    os._exit(0)


def signals_as_exceptions(until_exit: bool = False) -> AbstractContextManager[None]:
    """Signals as exceptions inside the block. `until_exit` (a console script, which ends after the block):
    once the block has completed, a signal ends the process with status 0 rather than killing it."""
    return handling(_raise, then=_done if until_exit else None)


def worker_signals() -> None:
    """In a forked worker: Ctrl-C goes to the whole process group, but only the main process acts on it
    (it then stops the workers); SIGTERM ends the worker; and the worker dies with the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: an orphaned worker then ends when its task queue closes
