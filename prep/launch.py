"""The console scripts' first code. Loading the libraries takes seconds (pyarrow, numba, transformers), and
Ctrl-C or SIGTERM in that time would print Python's KeyboardInterrupt traceback: here it ends with one line
and the shell's 130 or 143, as it does once a command runs (the commands' own handling then takes over)."""

from __future__ import annotations

import os
import signal
from contextlib import AbstractContextManager
from types import FrameType
from typing import TYPE_CHECKING

from prep.signals import handling

if TYPE_CHECKING:
    from prep.cli_errors import CommandGroup


def _leave(signum: int, frame: FrameType | None) -> None:
    what = "Interrupted" if signum == signal.SIGINT else "Terminated"
    os.write(2, f"{what} while starting: nothing was written.\n".encode())
    os._exit(128 + signum)


def quiet_start() -> AbstractContextManager[None]:
    """While the command's modules load: a signal ends the process with one line."""
    return handling(_leave)


def console(cli: CommandGroup) -> None:
    """Run a command line as its console script: it leaves with os._exit after an error (prep.cli_errors)."""
    cli.exit_hard = True
    cli()


def main() -> None:
    """`prep`."""
    with quiet_start():
        from prep.cli import main as cli
    console(cli)
