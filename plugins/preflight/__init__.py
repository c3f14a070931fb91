"""Preflight: will this run fit, and how long will it take? Enable with
`plugins: [plugins.preflight.PreflightPlugin]` and a `preflight:` block. The arithmetic lives in `prep.sizing`
(also behind `prep fit`); this package is the Axolotl side only.

The plugin class imports Axolotl (over ten seconds), so it is resolved on first access (PEP 562), which
Axolotl's getattr-based loader does; importing the package for its config model stays cheap.
"""

from __future__ import annotations

from typing import Any

from prep.sizing.errors import PreflightError

__all__ = ["PreflightError", "PreflightPlugin"]


def __getattr__(name: str) -> Any:
    if name == "PreflightPlugin":
        from plugins.preflight.plugin import PreflightPlugin

        return PreflightPlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
