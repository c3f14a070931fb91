"""The one error preflight raises: the message says what is wrong and what to change."""


class PreflightError(RuntimeError):
    pass
