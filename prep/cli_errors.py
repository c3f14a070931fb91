"""The one error path of both command lines, `prep` and `evals`: an error the user can fix ends in one line on
stderr (`Error: what, where and what to do (--debug for the traceback)`, exit 1) and `--debug` prints the
traceback before it; Ctrl-C ends with 130 (and SIGTERM with 143, where the command line turns it into an
exception) once the `with` blocks inside have cleaned up. Anything else is a bug and keeps its traceback."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar, NoReturn

import click

from prep.errors import PrepError
from prep.signals import Terminated, signals_as_exceptions

DEBUG_HINT = " (--debug for the traceback)"


def leave(code: int, message: str, hard: bool) -> NoReturn:
    """Say `message` and exit now that every `with` block has cleaned up. `hard` (the console scripts) skips the
    interpreter's joins of library threads: after a failure, nothing a library thread still holds is worth
    waiting for. A caller in the same process (click's CliRunner, a notebook) gets SystemExit instead."""
    click.echo(message, err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    if hard:
        os._exit(code)
    raise SystemExit(code)


def one_line(e: BaseException) -> str:
    """The error's message on one line: a file the OS refused reads `path: reason`, whatever a library said."""
    if isinstance(e, click.ClickException):
        message = e.format_message()
    elif isinstance(e, OSError) and e.strerror:  # no space, no permission, not a directory
        message = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    else:
        message = str(e) or type(e).__name__
    return " ".join(message.split())


@contextmanager
def user_errors(group: CommandGroup, debug: bool) -> Iterator[None]:
    """The group's `fixable` errors, and click errors a command raised, as one line (with the traceback first
    under `debug`); Ctrl-C as 130 and, when the group catches signals, SIGTERM as 143. Usage errors pass to
    click, which prints them with the usage."""
    try:
        with signals_as_exceptions(until_exit=group.exit_hard) if group.catch_signals else nullcontext():
            yield
    except click.UsageError:
        raise
    except click.ClickException as e:
        if debug:
            traceback.print_exc()
        leave(e.exit_code, f"Error: {one_line(e)}{DEBUG_HINT}", group.exit_hard)
    except group.fixable as e:
        if debug:
            traceback.print_exc()
        leave(1, f"Error: {one_line(e)}{DEBUG_HINT}", group.exit_hard)
    except KeyboardInterrupt:
        leave(130, f"Interrupted{group.after_signal}", group.exit_hard)
    except Terminated:
        leave(143, f"Terminated{group.after_signal}", group.exit_hard)


class CommandGroup(click.Group):
    """A click group whose every subcommand (and those added later, like `prep fit`) runs under `user_errors`,
    with the group's `--debug`."""

    fixable: ClassVar[tuple[type[BaseException], ...]] = (PrepError, OSError)
    catch_signals: ClassVar[bool] = True  # SIGTERM too becomes an exception, so `with` blocks clean up
    after_signal: ClassVar[str] = ": nothing was written, the previous outputs are as they were."
    exit_hard = False  # set by the console scripts (prep.launch.console)

    def invoke(self, ctx: click.Context) -> Any:
        with user_errors(self, bool(ctx.params.get("debug"))):
            return super().invoke(ctx)
