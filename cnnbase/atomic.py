"""The project's one atomic writer: a temp file in the target folder, renamed over the target
only when complete. A failed or killed write never leaves a half-written file, and an existing
good file is only ever replaced by a complete one. Every writer uses it (conversions, ONNX
exports, fine-tune checkpoints, JSON, PNG), with one permission rule: the usual 0666 & ~umask
(mkstemp alone would make the file private, 0600).

A writer killed outright (SIGKILL, a power cut) runs no clean-up and leaves its temp file behind.
So the temp name carries the writing process's id, ``.<target>.<pid>.<random>.tmp<suffix>``, and
every write first removes the temp files of the same target whose processes no longer run: the next
write of a target cleans up after a killed one, and two writers running at once never touch each
other's file (each one's process is alive).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

PathLike = str | os.PathLike
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO, errno.EFBIG)
# after ".<target>.": the owners' process ids, mkstemp's 8 random characters, ".tmp" and any suffix
# (a writer's own side files, e.g. ONNX external data, included)
_TEMP_TAIL = re.compile(r"(?P<pids>\d+(?:-\d+)*)\.[a-z0-9_]{8}\.tmp.*", re.DOTALL)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _flush_to_disk(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, exited but not yet reaped, does not). Where
    that cannot be told, True: a temp file is only ever removed when its owner is known dead."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or it exited meanwhile: alive is the safe answer
        return True
    return state not in ("Z", "X")


def temp_owners(target: PathLike, name: str):
    """The process ids written in ``name`` when it is one of :func:`atomic_path`'s temp files for
    ``target``, else None."""
    prefix = f".{Path(target).name}."
    if not name.startswith(prefix):
        return None
    match = _TEMP_TAIL.fullmatch(name[len(prefix) :])
    return tuple(int(p) for p in match.group("pids").split("-")) if match else None


def remove_stale_temp_files(target: PathLike) -> list:
    """Removes the temp files that writers of ``target`` killed outright left next to it (those
    whose every owner process has ended); returns their paths. A live writer's file is kept."""
    target = Path(target)
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        owners = temp_owners(target, entry.name)
        if owners is None or any(process_alive(pid) for pid in owners):
            continue
        try:
            os.unlink(entry.path)
        except OSError:  # another writer removed it first, a folder, no permission: left alone
            continue
        removed.append(Path(entry.path))
    return removed


def check_writable(path: PathLike, suffixes: tuple = ()) -> Path:
    """``path`` as a Path, or one line now for an output that would only fail at the end of a long
    run: a wrong file kind, a folder in its place, a file where a folder should be, no permission."""
    p = Path(path)
    if suffixes and not p.name.lower().endswith(tuple(suffixes)):
        raise ValueError(f"{p}: expected a file name ending in {' or '.join(suffixes)}")
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"cannot write {p}: it is a folder")
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write {p}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK):
        raise PermissionError(errno.EACCES, f"cannot write {p}: {ancestor} is not writable")
    return p


@contextlib.contextmanager
def atomic_path(target: PathLike, suffix: str = "", writers: Iterable[int] = ()) -> Iterator[Path]:
    """Yields a fresh temp path next to ``target`` (ending in ``suffix``, which some writers require,
    e.g. Keras' ``.weights.h5``); on success it replaces ``target``, on error it is removed. Stale temp
    files of ``target`` (their writers killed) are removed first. ``writers``: the ids of other
    processes that write the temp file (a child), named in it beside this process's own, so that it
    counts as stale only once all have ended."""
    target = check_writable(target)
    owners = "-".join(str(pid) for pid in (os.getpid(), *writers))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{owners}.", suffix=".tmp" + suffix, dir=target.parent)
    except OSError as err:  # an unwritable or impossible folder, a full disk: one line naming the target
        raise OSError(err.errno, f"cannot write {target}: {err.strerror or err}") from None
    os.close(fd)
    os.unlink(tmp)  # writers that refuse to overwrite get a fresh name
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as err:
            if err.errno in WRITE_FAILURES:  # a full disk mid-write: one line naming the target, the old file kept
                raise OSError(err.errno, f"cannot write {target}: {err.strerror or err}") from None
            raise
        if not tmp_path.exists():
            raise FileNotFoundError(f"the writer for {target} produced no file")
        os.chmod(tmp_path, 0o666 & ~_umask())
        _flush_to_disk(tmp_path)  # a crash right after the rename must not leave an empty file under the target's name
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write(path: PathLike, write: Callable[[str], None], suffix: str = "") -> Path:
    """Calls ``write(temp_path)`` and renames the result onto ``path``."""
    with atomic_path(path, suffix=suffix) as tmp:
        write(str(tmp))
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: PathLike, obj: Any, indent: int = 1) -> Path:
    return write_text(path, json.dumps(obj, indent=indent))
