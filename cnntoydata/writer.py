"""Writing the dataset atomically: into a temp folder beside the target, then one rename.

A crash or a second process never leaves a half-written dataset under the final name, and a folder
that already holds the same dataset (same ``cnntoydata.json``) is reused, which makes a cache of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .shapes import PARTS, SHAPES, draw

MANIFEST = "cnntoydata.json"
SPLITS = ("train", "val")


def _resolve_classes(classes: Sequence[str] | None, part: str | None) -> list:
    if classes is not None and part is not None:
        raise ValueError(f"give classes or part, not both (received classes={list(classes)}, part={part!r})")
    if part is not None:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; expected one of {sorted(PARTS)}")
        return list(PARTS[part])
    if classes is None:
        return list(SHAPES)
    classes = list(classes)
    unknown = [c for c in classes if c not in SHAPES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {', '.join(SHAPES)}; received {classes}")
    return classes


def _manifest(
    classes: list, train_per_class: int, val_per_class: int, size: int, seed: int, noise: float
) -> dict[str, Any]:
    for name, value in (("train_per_class", train_per_class), ("val_per_class", val_per_class), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, received {name}={value!r}")
    if not noise >= 0 or noise == float("inf"):
        raise ValueError(f"noise must be a finite number >= 0, received noise={noise!r}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, received size={size}")
    return {
        "format": 1,
        "classes": classes,
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "size": size,
        "seed": int(seed),
        "noise": float(noise),
    }


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _write(tmp: Path, manifest: dict[str, Any]) -> None:
    for split_index, split in enumerate(SPLITS):
        count = manifest[f"{split}_per_class"]
        for shape in manifest["classes"]:
            folder = tmp / split / shape
            folder.mkdir(parents=True)
            for i in range(count):
                # the image depends on (seed, split, shape, i) only: subsets reproduce the same files
                rng = np.random.default_rng([manifest["seed"], split_index, SHAPES.index(shape), i])
                draw(shape, rng, manifest["size"], manifest["noise"]).save(
                    folder / f"{shape}_{i:04d}.png", compress_level=1
                )
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))


def generate(
    root: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    part: str | None = None,
    train_per_class: int = 20,
    val_per_class: int = 10,
    size: int = 64,
    seed: int = 0,
    noise: float = 12.0,
    overwrite: bool = False,
) -> Path:
    """Writes ``root/{train,val}/<shape>/<shape>_NNNN.png`` and returns ``root``.

    ``part`` ("pretrain" or "target") picks one of two disjoint halves of the shapes, for transfer
    experiments; ``classes`` picks shapes by name; neither means all of :data:`SHAPES`. A ``root``
    that already holds this exact dataset is returned untouched; one holding anything else is an
    error unless ``overwrite``.
    """
    root = Path(root)
    manifest = _manifest(_resolve_classes(classes, part), train_per_class, val_per_class, size, seed, noise)
    if root.exists():
        if _read_manifest(root) == manifest:
            return root
        if not overwrite:
            raise FileExistsError(
                f"{root} exists and does not hold this cnntoydata dataset; pass overwrite=True (--overwrite) or "
                "choose another folder"
            )
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the dataset is not
        _write(tmp, manifest)
        if root.exists():  # overwrite: move the old one aside first, a directory cannot be renamed onto
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / "data")
            os.replace(tmp, root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, root)
            except OSError:  # another process finished the same dataset first
                if _read_manifest(root) != manifest:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def default_root(**options: Any) -> Path:
    """A cache folder for the dataset ``options`` describe: $CLASSIC_CNNS_CACHE, else
    ~/.cache/classic-cnns, else the temp dir; the name hashes the options, so each variant is kept."""
    manifest = _manifest(
        _resolve_classes(options.get("classes"), options.get("part")),
        options.get("train_per_class", 20),
        options.get("val_per_class", 10),
        options.get("size", 64),
        options.get("seed", 0),
        options.get("noise", 12.0),
    )
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]
    base = os.environ.get("CLASSIC_CNNS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "classic-cnns")
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        if not os.access(base, os.W_OK):
            raise PermissionError(base)
    except OSError:
        base = os.path.join(tempfile.gettempdir(), "classic-cnns")
    return Path(base) / f"cnntoydata-{digest}"


def ensure(**options: Any) -> Path:
    """The dataset ``options`` describe, generated into :func:`default_root` unless already there."""
    return generate(default_root(**options), **options)
