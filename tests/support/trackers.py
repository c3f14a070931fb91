"""Read back what a run logged to its trackers, as a user's tools would: W&B's offline run files (wandb 0.31 has
no Python reader of its own for them: the `.wandb` file is a LevelDB-style log of protobuf records, read here as
W&B's former `datastore` module did) and tensorboard's event files (its own EventAccumulator)."""

from __future__ import annotations

import json
import struct
import zlib
from collections import defaultdict
from pathlib import Path

HEADER = struct.Struct("<4sHB")  # ":W&B", magic 0xBEE1, version 0
RECORD = struct.Struct("<IHB")  # crc32, length, type
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    ident, magic, version = HEADER.unpack_from(data)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), path
    out, pending, pos = [], b"", HEADER.size
    while pos + RECORD.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < RECORD.size:  # the block's tail is padding
            pos += left
            continue
        crc, length, kind = RECORD.unpack_from(data, pos)
        if length == 0 and kind == 0:
            break
        chunk = data[pos + RECORD.size : pos + RECORD.size + length]
        assert zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF == crc, f"{path}: bad checksum at {pos}"
        pos += RECORD.size + length
        if kind == FULL:
            out.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            out.append(pending + chunk)
    return out


def wandb_history(root: Path, run_id: str) -> list[dict]:
    """Every history row logged to the W&B run `run_id` in offline run directories under `root`/wandb."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for path in sorted(root.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")):
        for data in _records(path):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") == "history":
                rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in record.history.item})
    return rows


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file in a tensorboard log directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for events in sorted(log_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars[tag] += [(e.step, e.value) for e in acc.Scalars(tag)]
    return dict(scalars)
