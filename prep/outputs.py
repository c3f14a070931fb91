"""What a command writes, written safely. Atomic, hashed output: a reader never sees a half-written file, files
written together appear together, the manifest can name their sha256, and their modes follow the umask as any
other program's would. And a build's outputs are refused when they would overwrite one of its inputs, each
other or another build's files: `--dropped` equal to `--out` lost every kept row, `--out` naming a source, a
benchmark file or the config overwrote it, and `--out` naming another build's manifest replaced it with data
rows."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import IO, Any

import orjson

from prep.errors import PrepError
from prep.paths import special_file

TEMP_PREFIX = ".prep-tmp."  # + pid: prep/workdir.py removes those a killed run left


class HashingWriter:
    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._f.write(data)
        self.sha256.update(data)


@cache
def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def file_mode() -> int:
    """0o666 less the umask: what open() would give a new file (mkstemp gives 0600 whatever the umask)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """0o777 less the umask: what mkdir would give (mkdtemp gives 0700)."""
    return 0o777 & ~_umask()


def make_dirs(directory: Path) -> None:
    """mkdir -p; a file where one of the directories should be is NotADirectoryError naming it ("File
    exists" said nothing useful)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), e.filename) from e


def _temp_beside(path: Path, directory: Path | None = None) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}.{path.name[:100]}.", dir=directory or path.parent)
    os.fchmod(fd, file_mode())
    return fd, Path(tmp)


@contextmanager
def blocked_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done: renames that belong together are not split."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Outputs:
    """Files written to temps and renamed into place together by `commit()`, or not at all: a failure before
    the commit (or a signal, which the commit holds off) leaves every old file as it was, and so does a failure
    of any rename inside it (the files already replaced get their old versions back). Files of the set the new
    one no longer has (`remove`) go in the same commit."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir  # temps of files in its parent directory go here
        self._staged: list[tuple[Path, Path, IO[bytes]]] = []
        self._removed: list[Path] = []

    def open(self, path: Path) -> HashingWriter:
        same_dir = self.workdir is not None and self.workdir.parent.resolve() == path.parent.resolve()
        make_dirs(path.parent)
        fd, tmp = _temp_beside(path, self.workdir if same_dir else None)
        f = os.fdopen(fd, "wb", buffering=1 << 20)
        self._staged.append((path, tmp, f))
        return HashingWriter(f)

    def remove(self, path: Path) -> None:
        """`path` goes at the commit (a file of the previous set that the new one does not have)."""
        if os.path.lexists(path):
            self._removed.append(path)

    def commit(self) -> None:
        for _, _, f in self._staged:
            f.flush()
            os.fsync(f.fileno())
            f.close()
        changes: list[tuple[Path, Path | None]] = [(path, tmp) for path, tmp, _ in self._staged]
        changes += [(path, None) for path in self._removed]
        with blocked_signals():
            done: list[tuple[Path, Path | None]] = []  # (target, a link to the file it replaced, if any)
            try:
                for path, tmp in changes:
                    done.append((path, _keep_old(path)))
                    if tmp is None:
                        path.unlink()
                    else:
                        os.replace(tmp, path)
            except OSError:
                _undo(done)
                raise
            for _, old in done:
                if old is not None:
                    with suppress(OSError):  # committed: a link left behind is swept by the next build
                        old.unlink(missing_ok=True)
            _sync_dirs({path.parent for path, _ in changes})
            self._staged, self._removed = [], []

    def discard(self) -> None:
        for _, tmp, f in self._staged:
            try:
                f.close()
            except OSError:
                pass  # a full disk fails the close's flush too; the unlink below still frees the space
            tmp.unlink(missing_ok=True)
        self._staged, self._removed = [], []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _keep_old(path: Path) -> Path | None:
    """A hard link to the file at `path`, beside it, so a failed commit can put it back; None if there is none.
    Where the file system has no hard links, the file itself moves aside (the path is then briefly empty)."""
    if not os.path.lexists(path):
        return None
    old = path.with_name(f"{TEMP_PREFIX}{os.getpid()}.{path.name[:100]}.old.{secrets.token_hex(4)}")
    try:
        os.link(path, old, follow_symlinks=False)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        os.rename(path, old)
    return old


def _undo(done: list[tuple[Path, Path | None]]) -> None:
    """Put the previous files back where a commit had already replaced them, newest first; a file the
    previous set did not have goes. Best effort: the commit's own error is the one to report."""
    for path, old in reversed(done):
        try:
            if old is not None:
                os.replace(old, path)
                old.unlink(missing_ok=True)  # rename does nothing when both names are links to one file
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def _sync_dirs(directories: set[Path]) -> None:
    """fsync the directories whose entries changed, so the renames survive a power cut together."""
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems refuse to fsync a directory; the renames are done all the same
        finally:
            os.close(fd)


@contextmanager
def atomic_output(path: Path) -> Iterator[HashingWriter]:
    """Write to a temp file beside `path`, fsync, then rename over it; on error the old file stays."""
    with Outputs() as outputs:
        writer = outputs.open(path)
        yield writer
        outputs.commit()


def write_json(path: Path, obj: Any) -> None:
    with atomic_output(path) as f:
        f.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)  # hard links
    except OSError:
        return False


# the names a build gives the files beside OUT: OUT.manifest.json, OUT.card.md, OUT.card.<plot>.png
COMPANION = re.compile(r"\.(manifest\.json|card\.md|card\.[A-Za-z0-9_-]+\.png)$")


def refuse_companion_names(outputs: dict[str, Path]) -> None:
    """An output the user names (`--out`, `--dropped`) may not carry the name of a file a build writes beside
    its OUT: it would overwrite another build's manifest or card, and leave that build's set inconsistent."""
    for role, path in outputs.items():
        if match := COMPANION.search(path.name):
            raise PrepError(
                f"{role} {path} is named like a build's {match.group(1)} (another build's file beside its OUT); "
                "give a data file's name: the manifest and card go beside it"
            )


def refuse_aliases(outputs: dict[str, Path], inputs: list[tuple[str, Path]]) -> None:
    """`outputs` maps a role (`--out`) to a path, `inputs` pairs a role (`source 'orca'`) with each file it
    reads; raises PrepError for the first output that is an input or another output."""
    outs = list(outputs.items())
    for i, (role, path) in enumerate(outs):
        fix = "give a file name" if role.startswith("--") else "move it away or give another --out"
        if path.is_dir():
            raise PrepError(f"{role} {path} is a directory; {fix}")
        if what := special_file(path):  # renaming over /dev/null would replace the device with a file
            raise PrepError(f"{role} {path} is {what}; {fix}")
        for other_role, other in outs[:i]:
            if _same(path, other):
                raise PrepError(f"{role} {path} is also {other_role}: give each output its own file")
        for in_role, source in inputs:
            if _same(path, source):
                raise PrepError(f"{role} {path} is {in_role}, an input: writing it would destroy it; pick another path")
