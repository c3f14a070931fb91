"""One rule for "is this a local path or a hub id?", shared by sources, benchmark references and preflight's
dataset check, and one answer to "which files does it name?" that reports every file it will not read.

The rule: a path that exists, or a glob, is local; a spec shaped like `owner/name` or a bare legacy `name`
(`gpt2`, `squad`; at most one slash, not ending in a file type's suffix, starting with a letter or digit) is
a hub id; anything else is a local path that is missing. Hub names may hold dots (`teknium/OpenHermes-2.5`,
`mistralai/Mistral-7B-v0.1`): only a suffix that is a file type (`data/merged.jsonl`) makes it a path."""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from prep.errors import PrepError

COMPRESSIONS = (".gz", ".zst", ".bz2", ".xz")  # what `datasets` also decompresses by extension
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
FILE_TYPES = {  # suffixes that make a hub-id-shaped spec a file path
    *(".parquet", ".jsonl", ".json", ".csv", ".tsv", ".txt", ".arrow", ".md", ".yml", ".yaml", ".zip", ".tar"),
    *(".bin", ".ftz", ".safetensors", ".pt", ".gguf"),
    *COMPRESSIONS,
}


@dataclass(frozen=True)
class Local:
    files: list[Path]  # the files to read, sorted so runs are reproducible
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # named by the spec but not read, and why


@dataclass(frozen=True)
class Hub:
    repo_id: str


def file_kind(path: Path) -> tuple[str, str]:
    """(format suffix, compression suffix or ""), lower-cased: `A.JSONL.gz` -> (".jsonl", ".gz")."""
    name = path.name.lower()
    compression = next((c for c in COMPRESSIONS if name.endswith(c)), "")
    return Path(name.removesuffix(compression)).suffix, compression


def is_hub_id(spec: str) -> bool:
    """Whether `spec`, when nothing local has its name, is a hub repo id."""
    return bool(HUB_ID.match(spec)) and Path(spec).suffix.lower() not in FILE_TYPES


def hub_offline() -> bool:
    return any(
        os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def resolve_path(
    spec: str,
    formats: tuple[str, ...],
    *,
    patterns: str | list[str] | None = None,
    base: Path | None = None,
    recursive: bool = False,
    compressed: tuple[str, ...] = (".json", ".jsonl"),
) -> Local | Hub:
    """What `spec` names: the readable files (format suffix in `formats`, compressed only for `compressed`
    formats), each once whatever links or overlapping patterns name it, with the ones skipped and why, or a
    hub id. A directory is listed (through `patterns` when given, recursively when `recursive`); a glob is
    expanded. Raises PrepError when nothing readable is named, or when `spec` is no file or directory (a FIFO
    would block the read for ever)."""
    if not spec.strip():
        raise PrepError("an empty path: give a file, glob or directory, or a hub id")
    path = Path(spec).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if what := special_file(path):
        raise PrepError(f"{path}: {what}; give a regular file or a directory")
    if path.is_file():
        if reason := _unreadable(path, formats, compressed):
            raise PrepError(f"{path}: {reason}")
        return Local([path])
    if path.is_dir():
        names = [patterns] if isinstance(patterns, str) else patterns or ["**/*" if recursive else "*"]
        found = [_glob(str(path / n), recursive) for n in names]
    elif glob.has_magic(spec):
        found = [_glob(str(path), recursive=True)]
    elif is_hub_id(spec):
        return Hub(spec)
    else:
        raise PrepError(
            f"{spec}: no such file or directory (looked at {path.absolute()}), and not a hub id (owner/name)"
        )
    files: list[Path] = []
    skipped = list(dict.fromkeys(s for _, walk_skips in found for s in walk_skips))
    first: dict[str, Path] = {}  # real path -> the name it is read under
    for f in sorted({f for matches, _ in found for f in matches}):
        if what := special_file(f):
            skipped.append((f, what))
        elif f.is_dir():
            if not recursive:
                skipped.append((f, "a directory (sub-directories are not read)"))
        elif reason := _unreadable(f, formats, compressed):
            skipped.append((f, reason))
        elif (real := os.path.realpath(f)) in first:
            skipped.append((f, f"the same file as {first[real]} (read once)"))
        else:
            first[real] = f
            files.append(f)
    if not files:
        shown = f"; skipped: {', '.join(f'{p.name} ({r})' for p, r in skipped[:3])}" if skipped else ""
        raise PrepError(f"{spec}: no {'/'.join(formats)} files there{shown}")
    return Local(files, skipped)


SKIP_KINDS = (  # the reasons a named file is not read, as `skipped_by_reason` counts them
    "a hidden file",
    "unsupported file type",
    "a directory that cannot be listed",
    "a directory",
    "not a regular file",
    "a broken symbolic link",
    "a symbolic link loop",
    "the same file as",
)


def skip_kind(reason: str) -> str:
    """The kind of a skip reason (its detail left out), to count skips by."""
    return next((kind for kind in SKIP_KINDS if reason.startswith(kind)), reason)


FILE_TYPE_NAMES = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def special_file(path: Path) -> str | None:
    """Why `path` can be neither read as a file nor listed (a FIFO, a device, a broken link), or None when it is
    a regular file, a directory or nothing at all."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"a broken symbolic link (to {os.readlink(path)})" if path.is_symlink() else None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"cannot be looked at ({e.strerror or e})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f"not a regular file ({FILE_TYPE_NAMES.get(stat.S_IFMT(mode), 'a special file')})"


def read_capped(path: Path, limit: int, too_large: str, hint: str) -> bytes:
    """The bytes of a file read whole (a config, a manifest), never more than `limit` + 1 of them: one that cannot
    be read, or holds more than `limit` (`too_large` says how much that is and what it makes the file), is one
    PrepError ending with `hint`."""
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise PrepError(f"{path}: cannot read ({e.strerror or e}); {hint}") from e
    if len(data) > limit:
        raise PrepError(f"{path}: larger than {too_large}; {hint}")
    return data


PIPE_NAMES = re.compile(r"/dev/stdin|/dev/fd/\d+|/proc/self/fd/\d+")  # a pipe the shell feeds: `-`, `<(...)`


def refuse_special(path: Path, what: str) -> None:
    """A file read whole (a config, a recipe, a job) must be a regular file, or a pipe named as the shell
    hands one over (/dev/stdin, /dev/fd/N): a FIFO by name may have no writer, and reading it would wait for
    ever; a device never ends."""
    if (reason := special_file(path)) and not (reason.endswith("(a FIFO)") and PIPE_NAMES.fullmatch(str(path))):
        raise PrepError(f"{path}: {reason}; give the {what} as a regular file (or a pipe as /dev/stdin)")


def _glob(pattern: str, recursive: bool) -> tuple[list[Path], list[tuple[Path, str]]]:
    """What glob.glob(pattern, recursive=recursive) matches (hidden names only where the pattern spells the dot),
    with the directories it could not walk and why. `**` does not follow a symbolic link back into a directory
    it is already inside: glob walked such a loop 40 levels deep, reading each file 40 times (and, with two
    links, for ever)."""
    parts = Path(pattern).parts
    start = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    root = Path(*parts[:start]) if start else Path(".")
    if start == len(parts):
        return ([root] if os.path.lexists(root) else []), []
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []

    def entries(d: Path, hidden: bool) -> list[Path]:
        try:
            with os.scandir(d) as it:
                return sorted(d / e.name for e in it if hidden or not e.name.startswith("."))
        except OSError as e:
            skipped.append((d, f"a directory that cannot be listed ({e.strerror or e})"))
            return []

    def inside(entry: Path, rest: tuple[str, ...], ancestors: frozenset[str]) -> None:
        if not rest:
            found.append(entry)
        elif entry.is_dir():
            match(entry, rest, ancestors | {os.path.realpath(entry)})

    def match(d: Path, rest: tuple[str, ...], ancestors: frozenset[str]) -> None:
        part, tail = rest[0], rest[1:]
        if part == "**" and recursive:
            if tail:
                match(d, tail, ancestors)  # zero directories deep
            for entry in entries(d, hidden=False):
                if not tail:
                    found.append(entry)
                if not entry.is_dir():
                    continue
                if (real := os.path.realpath(entry)) in ancestors:
                    skipped.append((entry, f"a symbolic link loop (back to {real}; not followed)"))
                    continue
                match(entry, rest, ancestors | {real})
        elif glob.has_magic(part):
            for entry in entries(d, hidden=part.startswith(".")):
                if fnmatch.fnmatchcase(entry.name, "*" if part == "**" else part):
                    inside(entry, tail, ancestors)
        elif os.path.lexists(d / part):
            inside(d / part, tail, ancestors)

    if root.is_dir():
        match(root, parts[start:], frozenset({os.path.realpath(root)}))
    return found, skipped


def _unreadable(path: Path, formats: tuple[str, ...], compressed: tuple[str, ...]) -> str | None:
    """Why `path` will not be read, or None."""
    if path.name.startswith("."):
        return "a hidden file"
    kind, compression = file_kind(path)
    if kind not in formats or (compression and kind not in compressed):
        readable = ", ".join(formats) + (
            f" ({', '.join(compressed)} also {'/'.join(COMPRESSIONS)})" if compressed else ""
        )
        return f"unsupported file type {kind + compression or '(none)'}; readable: {readable}"
    return None
