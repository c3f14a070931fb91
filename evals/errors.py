"""User errors of the evals CLI: printed as one line (the file, key or value and what to do), no
traceback unless `evals --debug`. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class EvalsError(Exception):
    """A bad input, path or setting; the message names it and says what to do."""
