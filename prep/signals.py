"""Ctrl-C and SIGTERM as exceptions in the main process, so every `with` block (workers, spill, temps) cleans
up on the way out; a second signal while that runs is ignored rather than cutting the cleanup short."""

from __future__ import annotations

import signal
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


@contextmanager
def handling(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` inside the block; the handlers before it come back after it."""
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, previous in old.items():
            signal.signal(s, previous)


def signals_as_exceptions() -> AbstractContextManager[None]:
    return handling(_raise)


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
