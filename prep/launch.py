"""The console scripts' first code. Loading the libraries takes seconds (pyarrow, numba, transformers), and
Ctrl-C or SIGTERM in that time would print Python's KeyboardInterrupt traceback: here it ends with one line
and the shell's 130 or 143, as it does once a command runs (the commands' own handling then takes over)."""

from __future__ import annotations

import os
import signal
from contextlib import AbstractContextManager
from types import FrameType

from prep.signals import handling


def _leave(signum: int, frame: FrameType | None) -> None:
    what = "Interrupted" if signum == signal.SIGINT else "Terminated"
    os.write(2, f"{what} while starting: nothing was written.\n".encode())
    os._exit(128 + signum)


def quiet_start() -> AbstractContextManager[None]:
    """While the command's modules load: a signal ends the process with one line."""
    return handling(_leave)


def main() -> None:
    """`prep`."""
    with quiet_start():
        from prep.cli import main as cli
    cli()
