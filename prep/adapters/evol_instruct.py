"""WizardLM Evol-Instruct V2: {idx, conversations: [{from, value}]}, multi-turn, strictly human/gpt."""

from __future__ import annotations

from prep.adapters.sharegpt import original_id, parse_turns
from prep.rows import RawRecord, Row
from prep.source import SourceConfig

# No system turns and no aliases: anything else means the file is not the WizardLM layout.
ROLES = {"human": "human", "gpt": "gpt"}


def adapt(record: RawRecord, source: SourceConfig, index: int) -> Row:
    data = record.data or {}
    return Row(
        id=f"{source.name}/{original_id(data, index)}",
        source=source.name,
        subsource=None,
        teacher=source.teacher,
        conversations=parse_turns(data, "conversations", ROLES),
    )
