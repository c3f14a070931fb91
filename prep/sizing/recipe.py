"""Reading a recipe as a user wrote it: YAML with duplicate keys refused, values that cannot run refused, and the
top-level keys Axolotl does not know (it drops them silently, so `num_epoch: 3` would train 1 epoch)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from prep.sizing.errors import PreflightError

MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of YAML; anything bigger is not one (and bounds alias bombs)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_recipe(path: Path) -> dict[str, Any]:
    """The recipe's mapping, or a one-line PreflightError naming the file and what is wrong."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PreflightError(f"{path}: cannot read ({e.strerror})") from e
    if len(raw) > MAX_RECIPE_BYTES:
        raise PreflightError(f"{path}: {len(raw):,} bytes is not a recipe (at most {MAX_RECIPE_BYTES:,})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PreflightError(f"{path}: not UTF-8 (byte {e.start}); save the recipe as UTF-8") from e
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise PreflightError(f"{path}{where}: invalid YAML: {problem}") from e
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
