"""The project's one atomic writer: a temp file in the target folder, renamed over the target
only when complete. A failed or killed write never leaves a half-written file, and an existing
good file is only ever replaced by a complete one. Every writer uses it (conversions, ONNX
exports, fine-tune checkpoints, JSON, PNG), with one permission rule: the usual 0666 & ~umask
(mkstemp alone would make the file private, 0600).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Union

PathLike = Union[str, os.PathLike]
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO, errno.EFBIG)


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
def atomic_path(target: PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a fresh temp path next to ``target`` (ending in ``suffix``, which some writers require,
    e.g. Keras' ``.weights.h5``); on success it replaces ``target``, on error it is removed."""
    target = check_writable(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + suffix, dir=target.parent)
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
