"""The run's inputs exist: each dataset file parses as its declared type, the base model is reachable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from prep.errors import PrepError
from prep.paths import Hub, file_kind, is_hub_id, resolve_path
from prep.readers import FORMATS as DATASET_FORMATS
from prep.readers import read_file

WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.gguf")


@dataclass(frozen=True)
class InputCheck:
    name: str  # "datasets" | "model"
    status: str  # "ok" | "warn" (could not check) | "fail"
    detail: str


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
    if not is_hub_id(base_model):
        return InputCheck(
            "model", "fail", f"base_model {base_model}: no such directory (looked at {local}), and not a hub id"
        )
    return _hub_access(base_model, "model")


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


def check_datasets(datasets: list[Mapping[str, Any]], run_dir: Path, rows: int) -> list[InputCheck]:
    """One check per `datasets:` entry: a local path (prep.paths' rule, as `prep build` reads its sources) has
    readable files whose first `rows` rows parse; a hub id is reachable."""
    if not datasets:
        return [InputCheck("datasets", "fail", "the config has no datasets")]
    out = []
    for i, entry in enumerate(datasets):
        where = f"datasets[{i}].path"
        raw = str(entry.get("path") or "")
        if not raw:
            out.append(InputCheck("datasets", "fail", f"{where} is empty"))
            continue
        try:
            found = resolve_path(raw, DATASET_FORMATS, base=run_dir, recursive=True)
        except PrepError as e:
            out.append(InputCheck("datasets", "fail", f"{where}: {e}"))
            continue
        if isinstance(found, Hub):
            out.append(_hub_access(found.repo_id, "dataset"))
        else:
            out.append(_check_files(found.files, entry, where, rows))
    return out


def _check_files(files: list[Path], entry: Mapping[str, Any], where: str, rows: int) -> InputCheck:
    """The first `rows` records of `files`, read by prep's readers, against the entry's declared type."""
    seen = 0
    for path in files:
        line = "line" if file_kind(path)[0] == ".jsonl" else "row"
        try:
            for record in islice(read_file(path), rows):
                problem = record.error if record.data is None else _row_problem(record.data, entry)
                if problem:
                    return InputCheck("datasets", "fail", f"{where}: {path} {line} {record.row}: {problem}")
                seen += 1
        except PrepError as e:
            return InputCheck("datasets", "fail", f"{where}: {e}")
    if not seen:
        return InputCheck("datasets", "fail", f"{where}: {', '.join(map(str, files))} has no rows")
    kind = entry.get("type") or "rows"
    return InputCheck("datasets", "ok", f"{where}: first {seen} rows of {len(files)} file(s) parse as {kind}")
