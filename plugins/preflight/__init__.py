"""Preflight: will this run fit? Enable with `plugins: [plugins.preflight.PreflightPlugin]` and a `preflight:` block.

The plugin class imports Axolotl (over ten seconds); `prep fit` and every other `prep` command import this
package too, so the class is resolved lazily on first access (PEP 562), which Axolotl's getattr-based loader does.
"""

from __future__ import annotations

from typing import Any

from plugins.preflight.errors import PreflightError

__all__ = ["PreflightError", "PreflightPlugin"]


def __getattr__(name: str) -> Any:
    if name == "PreflightPlugin":
        from plugins.preflight.plugin import PreflightPlugin

        return PreflightPlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
