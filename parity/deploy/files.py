"""What an export leaves: its record (:class:`DeployExport`), its size, and the atomic folder a
SavedModel or an OpenVINO export is written into (a file goes through :func:`cnnbase.atomic.atomic_path`)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cnnbase.atomic import process_alive, temp_owners

PathLike = str | os.PathLike


@dataclass
class DeployExport:
    target: str
    framework: str
    path: str
    seconds: float
    size_mb: float
    peak_rss_mb: float  # the exporting process (the child's for keras)
    layout: str  # the artifact's input layout: NCHW (torch) or NHWC (keras)
    quantize: str | None = None  # float16, dynamic-int8; None: float32

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def size_mb(path: PathLike) -> float:
    p = Path(path)
    total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return round(total / 1e6, 2)


def rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def remove_stale_temp_folders(target: PathLike) -> list[Path]:
    """Removes the temp folders that writers of ``target`` killed outright left beside it (every
    owner ended; a live writer's is kept), as :func:`cnnbase.atomic.remove_stale_temp_files` does for files."""
    target = Path(target)
    removed = []
    for entry in os.scandir(target.parent) if target.parent.is_dir() else ():
        owners = temp_owners(target, entry.name)
        if owners is None or not entry.is_dir() or any(process_alive(pid) for pid in owners):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_dir(target: PathLike, writers: tuple[int, ...] = ()) -> Iterator[Path]:
    """Yields a fresh temp folder beside ``target``; on success it replaces ``target`` (an old
    folder is moved aside first and removed after), on error it is removed. ``writers``: other
    processes writing into it (a child), named in it so that it is stale only once all ended."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"cannot write {target}: a file is in its place (this target is a folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_folders(target)
    owners = "-".join(str(pid) for pid in (os.getpid(), *writers))
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{owners}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f"{tmp.name}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
