"""The one exception type for what a user can fix, how a pydantic error becomes one line of it, and the error
for a name that no registry (formats, steps, benchmarks) knows. It imports nothing of prep, so every module can
raise them."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError


class PrepError(Exception):
    """A user-facing error: bad config, bad input file or row (in --strict). Its message is one line that
    names the file, row and field or key, and what to do; the CLI prints it without a traceback."""


def validation_message(e: ValidationError, prefix: str = "") -> str:
    """pydantic's multi-line report as one line, `; `-joined: `prefix` + `key.path: what is wrong (got X)` per
    error. A message that already starts with its key path (a nested section's report) is kept as it is."""
    parts = []
    for err in e.errors(include_url=False):
        loc = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = repr(got) if isinstance(got, (str, int, float, bool)) or got is None else type(got).__name__
        if msg.startswith(loc) and loc:
            parts.append(msg)
        elif not loc or err["type"] == "value_error":
            parts.append(f"{loc}: {msg}" if loc else msg)
        else:
            parts.append(f"{loc}: {msg} (got {shown[:80]})")
    return "; ".join(parts)


def registered(name: str, registry: Mapping[str, object], kind: str) -> str:
    """`name` if `registry` has it, else a ValueError (for a pydantic validator) listing the known names."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {list(registry)}")
    return name
