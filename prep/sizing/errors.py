"""The one error preflight raises: the message says what is wrong and what to change."""

from __future__ import annotations

from typing import Any


class PreflightError(RuntimeError):
    """`report` is the full preflight report when the error is a refusal (so `prep fit --json` can print it)."""

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report
