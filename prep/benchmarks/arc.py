"""ARC (Clark et al. 2018), `allenai/ai2_arc`: no local layout here; hub rows with `choices: {text, label}`."""

from __future__ import annotations

from typing import Any


def item(record: dict[str, Any]) -> tuple[str, list[str]]:
    return record["question"], [f"{record['question']} {' '.join(record['choices']['text'])}"]
