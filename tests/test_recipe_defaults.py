"""The fine-tuning defaults of issue 34 and what they rest on: the packaged real datasets are the
sizes their docstring states with no image in both splits, and the data-derived crop and flip
rules pick what their reasons say (cheap: small synthetic folders, no training)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnntune import policy
from cnntune.options import FinetuneOptions


def _hashes(root: Path, split: str) -> list[str]:
    files = sorted((root / split).rglob("*.png"))
    return [hashlib.sha1(np.asarray(Image.open(p)).tobytes()).hexdigest() for p in files]


@pytest.mark.parametrize("name", ["digits", "faces", "textures"])
def test_real_datasets_have_the_stated_sizes_and_no_shared_image(tmp_path, name):
    pytest.importorskip("skimage")
    pytest.importorskip("sklearn")
    from benchmarks.real_datasets import SIZES, write_all

    root = write_all(tmp_path, names=(name,))[name]
    train, val = _hashes(root, "train"), _hashes(root, "val")
    assert (len(train), len(val)) == SIZES[name][:2]
    assert len({p.name for p in (root / "train").iterdir()}) == SIZES[name][2]
    if name == "textures":  # cut from disjoint regions: no val patch is a train patch
        assert not set(train) & set(val)
    else:  # distinct sources: each image is in one split only (a few digits scans repeat: compare indices)
        names = lambda split: {(p.parent.name, p.stem) for p in (root / split).rglob("*.png")}  # noqa: E731
        if name == "faces":
            assert not set(train) & set(val)
        else:
            assert not {s for _, s in names("train")} & {s for _, s in names("val")}


def _folder(root: Path, draw, classes=("a", "b"), n=40, side=16) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(draw(k, rng, side)).save(root / "train" / name / f"{i}.png")
    return root


def _left_or_right(k, rng, side):
    """Class a bright on the left, class b on the right: a mirror swaps the classes, upside down does not."""
    image = rng.integers(0, 60, (side, side)).astype(np.uint8)
    half = slice(0, side // 2) if k == 0 else slice(side // 2, side)
    image[:, half] += 150
    return image


def _noise(k, rng, side):
    """Textures without a layout: fine or coarse noise."""
    coarse = rng.integers(0, 255, (side // (2 + 2 * k), side // (2 + 2 * k))).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((side, side), Image.NEAREST))


def test_flip_and_crop_rules_keep_the_label(tmp_path):
    layout, noise = _folder(tmp_path / "lr", _left_or_right), _folder(tmp_path / "noise", _noise)
    flip, why = policy.choose_flip(layout)
    assert flip == "vertical"
    assert "upside down" in why and "mirrored" in why
    scale, why = policy.choose_crop(layout, 32)  # 16 px images enlarged 2x
    assert scale == 0.8 and "enlarged 2.0x (16 to 32 px)" in why
    flip, why = policy.choose_flip(noise)
    assert flip == "both"
    assert "no layout" in why
    scale, why = policy.choose_crop(noise, 24)
    assert scale == 1.0 and "enlarged 1.5x (16 to 24 px), under 2x" in why


def test_recipe_resolves_the_flip_from_the_data_only_when_asked(tmp_path):
    root = _folder(tmp_path / "lr", _left_or_right)
    opts = FinetuneOptions(data=str(root), size=32).resolved()
    chosen, choices = policy.resolve_recipe(opts, root)
    assert (chosen.flip, chosen.crop_scale) == ("vertical", 0.8)
    assert [c for c, _ in choices] == ["crop area 0.8-1", "flip vertical"]
    given, choices = policy.resolve_recipe(FinetuneOptions(data=str(root), flip="both", crop_scale=1).resolved(), root)
    assert (given.flip, given.crop_scale) == ("both", 1) and choices == []
    off, choices = policy.resolve_recipe(FinetuneOptions(data=str(root), augment=False).resolved(), root)
    assert (off.flip, off.crop_scale) == ("none", 1.0) and choices == []
    # a resumed run keeps the augmentation it was trained with
    resumed = FinetuneOptions(data=str(root)).resolved({"flip": "horizontal", "crop_scale": 1.0})
    assert (resumed.flip, resumed.crop_scale) == ("horizontal", 1.0)


def test_defaults_crop_little_and_keep_the_plain_loss():
    d = FinetuneOptions()
    assert (d.crop_scale, d.label_smoothing, d.flip) == (None, 0.0, None)
    with pytest.raises(ValueError, match="flip must be one of"):
        FinetuneOptions(flip="diagonal")
    with pytest.raises(ValueError, match="crop_scale must be"):
        FinetuneOptions(crop_scale=0)
