"""The `preflight:` block of a recipe, merged into Axolotl's schema; the model itself lives in prep.sizing."""

from __future__ import annotations

from pydantic import BaseModel

from prep.sizing.config import PreflightConfig


class PreflightArgs(BaseModel):
    """Merged into Axolotl's config schema by `PreflightPlugin.get_input_args`."""

    preflight: PreflightConfig | None = None
