"""The run's inputs exist: each dataset file parses as its declared type, the base model is reachable."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv", ".arrow", ".txt")
WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


@dataclass(frozen=True)
class InputCheck:
    name: str  # "datasets" | "model"
    status: str  # "ok" | "warn" (could not check) | "fail"
    detail: str


def _looks_local(path: str) -> bool:
    return path.startswith((".", "/", "~")) or path.endswith(LOCAL_SUFFIXES)


def _hub_access(repo: str, repo_type: str) -> InputCheck:
    """Hub reachability and gated access; offline or a network error is reported as not checked, never a hang."""
    from huggingface_hub import auth_check, constants, get_token
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

    name = "model" if repo_type == "model" else "datasets"
    if constants.HF_HUB_OFFLINE:
        return InputCheck(name, "warn", f"{repo}: hub {repo_type} not checked (HF_HUB_OFFLINE=1)")
    token_note = "no Hugging Face token is set" if get_token() is None else "the token in use has no access"
    try:
        auth_check(repo, repo_type=repo_type)
    except GatedRepoError:
        return InputCheck(
            name,
            "fail",
            f"{repo} is gated and {token_note}: accept its license at "
            f"https://huggingface.co/{repo} and run `hf auth login` or set HF_TOKEN",
        )
    except RepositoryNotFoundError:
        return InputCheck(name, "fail", f"{repo}: no such hub {repo_type} (or private and {token_note})")
    except Exception as e:  # network trouble is not the recipe's fault: say it, do not refuse on it
        return InputCheck(name, "warn", f"{repo}: hub {repo_type} could not be checked ({type(e).__name__}: {e})")
    return InputCheck(name, "ok", f"{repo}: reachable on the hub")


def check_model(base_model: str, run_dir: Path) -> InputCheck:
    local = run_dir / Path(base_model).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            return InputCheck("model", "fail", f"base_model {local} has no config.json")
        if not any(next(local.glob(g), None) for g in WEIGHT_GLOBS):
            return InputCheck(
                "model", "fail", f"base_model {local} has a config.json but no weight files ({', '.join(WEIGHT_GLOBS)})"
            )
        return InputCheck("model", "ok", f"{local}: config.json and weights present")
    if _looks_local(base_model):
        return InputCheck("model", "fail", f"base_model {base_model}: no such directory (looked at {local})")
    return _hub_access(base_model, "model")


def _rows(path: Path, limit: int) -> Iterator[tuple[str, Any]]:
    """("line N" or "row N", parsed row) for the first `limit` rows of a JSON Lines, JSON array or Parquet file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=limit), None)
        for n, row in enumerate(batch.to_pylist() if batch is not None else [], 1):
            yield f"row {n}", row
        return
    with path.open("rb") as f:
        is_array = f.read(4096).lstrip().startswith(b"[")
        f.seek(0)
        if is_array:
            import ijson

            for n, row in enumerate(islice(ijson.items(f, "item"), limit), 1):
                yield f"row {n}", row
            return
        n = 0
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"line {line_no}: not valid JSON ({e.msg})") from e
            yield f"line {line_no}", row
            n += 1
            if n >= limit:
                return


def _row_problem(row: Any, entry: Mapping[str, Any]) -> str | None:
    """Why a row does not fit the entry's declared type (chat_template: a list of role/content messages)."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    if entry.get("type") != "chat_template":
        return None
    field = entry.get("field_messages") or "messages"
    mapping = {"role": "role", "content": "content", **(entry.get("message_property_mappings") or {})}
    messages = row.get(field)
    if not isinstance(messages, list) or not messages:
        return f"field {field!r} must be a non-empty list of messages, got {type(messages).__name__}"
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"{field}[{i}] must be an object, got {type(message).__name__}"
        for want in ("role", "content"):
            if not isinstance(message.get(mapping[want]), str):
                return f"{field}[{i}] has no string {mapping[want]!r} (its {want})"
    return None


def _dataset_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl", ".parquet"))


def check_datasets(datasets: list[Mapping[str, Any]], run_dir: Path, rows: int) -> list[InputCheck]:
    """One check per `datasets:` entry: the local files exist and their first `rows` rows parse."""
    if not datasets:
        return [InputCheck("datasets", "fail", "the config has no datasets")]
    out = []
    for i, entry in enumerate(datasets):
        where = f"datasets[{i}].path"
        raw = str(entry.get("path") or "")
        local = run_dir / Path(raw).expanduser()
        if not raw:
            out.append(InputCheck("datasets", "fail", f"{where} is empty"))
        elif local.exists():
            files = _dataset_files(local)
            if not files:
                out.append(InputCheck("datasets", "fail", f"{where} = {local}: no .json/.jsonl/.parquet files in it"))
                continue
            out.append(_check_files(files, entry, where, rows))
        elif _looks_local(raw) or entry.get("ds_type") in ("json", "parquet", "csv", "arrow"):
            out.append(InputCheck("datasets", "fail", f"{where} = {raw}: file not found (looked at {local})"))
        else:
            out.append(_hub_access(raw, "dataset"))
    return out


def _check_files(files: list[Path], entry: Mapping[str, Any], where: str, rows: int) -> InputCheck:
    seen = 0
    for path in files:
        try:
            for n, row in _rows(path, rows):
                problem = _row_problem(row, entry)
                if problem:
                    return InputCheck("datasets", "fail", f"{where}: {path} {n}: {problem}")
                seen += 1
        except (ValueError, OSError) as e:
            return InputCheck("datasets", "fail", f"{where}: {path} {e}")
        except Exception as e:  # ijson/pyarrow parse errors carry their own types
            return InputCheck("datasets", "fail", f"{where}: {path} does not parse: {type(e).__name__}: {e}")
    if not seen:
        return InputCheck("datasets", "fail", f"{where}: {', '.join(map(str, files))} has no rows")
    kind = entry.get("type") or "rows"
    return InputCheck("datasets", "ok", f"{where}: first {seen} rows of {len(files)} file(s) parse as {kind}")
