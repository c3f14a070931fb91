"""Reading a recipe as a user wrote it: YAML with duplicate keys refused, values that cannot run refused, and the
top-level keys Axolotl does not know (it drops them silently, so `num_epoch: 3` would train 1 epoch)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prep.errors import PrepError
from prep.sizing.errors import PreflightError
from prep.yamlio import load_yaml


def read_recipe(path: Path) -> dict[str, Any]:
    """The recipe's mapping, or a one-line PreflightError naming the file and what is wrong (prep's bounded YAML
    reader: duplicate keys, non-UTF-8 bytes, alias bombs and oversized files are refused)."""
    try:
        data = load_yaml(path)
    except PrepError as e:
        raise PreflightError(str(e)) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PreflightError(f"{path}: a recipe is a YAML mapping of keys, got {type(data).__name__}")
    return data


# key -> (smallest allowed value, whether the bound itself is allowed, type)
POSITIVE: dict[str, tuple[float, bool, type]] = {
    "num_epochs": (0, False, float),
    "sequence_len": (1, True, int),
    "micro_batch_size": (1, True, int),
    "gradient_accumulation_steps": (1, True, int),
    "lora_r": (1, True, int),
    "save_total_limit": (1, True, int),
    "saves_per_epoch": (0, False, float),
    "max_steps": (1, True, int),
    "val_set_size": (0, True, float),
    "learning_rate": (0, False, float),
}


def check_values(cfg: Mapping[str, Any], where: str) -> None:
    """Refuse values no run can use (negative epochs, a zero micro batch ...) with the key and the file."""
    for key, (low, inclusive, kind) in POSITIVE.items():
        value = cfg.get(key)
        if value is None:
            continue
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
        if not bad and kind is int and float(value) != int(value):
            bad = True
        if bad:
            raise PreflightError(f"{where}: {key} must be a {'whole ' if kind is int else ''}number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")) or value < low or (value == low and not inclusive):
            op = ">=" if inclusive else ">"
            raise PreflightError(f"{where}: {key} must be {op} {low:g}, got {value!r}")


def unknown_keys(cfg: Mapping[str, Any]) -> list[str] | None:
    """Top-level keys that neither Axolotl nor the recipe's plugins declare, each with the closest known key;
    None when Axolotl is not installed (prep does not need it). Reads the plugins' argument models without
    registering them: inside a run, Axolotl's plugin manager holds the live instances."""
    import difflib
    import importlib

    try:
        from axolotl.integrations.base import load_plugin
        from axolotl.utils.schemas.config import AxolotlInputConfig
    except ImportError:
        return None
    fields = dict(AxolotlInputConfig.model_fields)
    for name in cfg.get("plugins") or []:
        try:
            args = load_plugin(str(name)).get_input_args()
            if args:
                module, cls = args.rsplit(".", 1)
                fields |= getattr(importlib.import_module(module), cls).model_fields
        except (ImportError, AttributeError, ValueError) as e:
            raise PreflightError(f"plugins: cannot load {name!r} ({e})") from e
    known = set(fields) | {f.alias for f in fields.values() if f.alias}
    out = []
    for key in sorted(str(k) for k, v in cfg.items() if k not in known and v is not None):  # null: no effect
        near = difflib.get_close_matches(key, sorted(known), n=1)
        out.append(f"{key} (did you mean {near[0]}?)" if near else key)
    return out
