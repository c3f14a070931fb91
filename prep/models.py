"""Models a step loads (sentence embedders, scorers): a local directory, or a hub id fetched before any row is
read, so a missing model ends the build at once with the key to fix."""

from __future__ import annotations

from pathlib import Path

from prep.errors import PrepError


def model_path(model: str, key: str) -> str:
    """The local directory of `model`; `key` names the config entry in the error."""
    if Path(model).is_dir():
        return model
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model)
    except Exception as e:  # offline, unknown repo, no access: all end the build here
        raise PrepError(f"{key} {model!r}: not a local directory and not loadable from the hub: {e}") from e
