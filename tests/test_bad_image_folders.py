"""Image folders as users have them: a non-image named .png, a truncated PNG, grayscale, RGBA and
palette images, a class left with nothing readable. Unreadable files are named in one warning and
skipped by both frameworks' loaders (the same files); other modes are converted; a class with no
readable image is one error naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from image_folders import write_colours
from PIL import Image

from cnntune.folders import DataLayoutError, check_layout, is_usable_image


def _damage(root: Path) -> dict:
    train = root / "train"
    (train / "red" / "notes.png").write_text("not an image")
    good = (train / "green" / "0.png").read_bytes()
    (train / "green" / "cut.png").write_bytes(good[: len(good) // 2])  # truncated mid-data
    (train / "blue" / "empty.png").write_bytes(b"")
    pixels = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert("L").save(train / "red" / "gray.png")
    Image.fromarray(pixels).convert("RGBA").save(train / "green" / "rgba.png")
    Image.fromarray(pixels).convert("P").save(train / "blue" / "palette.png")
    return {
        "bad": [train / "red" / "notes.png", train / "green" / "cut.png", train / "blue" / "empty.png"],
        "converted": [train / "red" / "gray.png", train / "green" / "rgba.png", train / "blue" / "palette.png"],
    }


def test_unreadable_files_are_named_and_skipped_by_both_loaders(tmp_path, capsys):
    root = write_colours(tmp_path / "data", train=4, val=2)
    files = _damage(root)
    assert check_layout(root) == ["blue", "green", "red"]
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "skipping 3 unreadable image file(s)" in warning
    assert all(str(f) in warning for f in files["bad"])
    assert not any(is_usable_image(f) for f in files["bad"]) and all(is_usable_image(f) for f in files["converted"])

    import cnnspec
    from torch_impl.finetune import image_folders

    train, _ = image_folders(root, cnnspec.get("resnet18"), 32, augment=False)
    torch_files = sorted(path for path, _ in train.samples)
    assert len(torch_files) == 3 * 4 + 3
    for i in range(len(train)):  # every remaining file decodes, whatever its mode
        assert tuple(train[i][0].shape) == (3, 32, 32)

    from keras_impl.data import DecodedImages, list_images

    keras_files, _ = list_images(root / "train", ["blue", "green", "red"])
    assert sorted(keras_files) == torch_files
    images = DecodedImages(32, 3)
    assert {images(f).shape for f in keras_files} == {(32, 32, 3)}


def test_a_class_without_a_readable_image_is_one_error_naming_it(tmp_path):
    root = write_colours(tmp_path / "data", train=2, val=2)
    for f in (root / "val" / "green").iterdir():
        f.write_text("broken")
    with pytest.raises(DataLayoutError, match=r"class folder .*val/green has no readable image"):
        check_layout(root)


def test_a_file_that_fails_to_decode_later_is_one_line_naming_it(tmp_path):
    from torch_impl.finetune import CachingImageLoader

    path = tmp_path / "x.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:300])  # a header that opens, data that does not decode
    with pytest.raises(ValueError, match=f"cannot read image {path}"):
        CachingImageLoader()(str(path))


def test_an_image_past_the_decompression_bomb_limit_is_named_and_skipped(tmp_path, capsys, monkeypatch):
    from PIL import Image as PILImage

    root = write_colours(tmp_path / "data", train=2, val=2)
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(root / "train" / "red" / "huge.png")
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 20_000)  # 300x300 = 90,000 pixels: past twice the limit
    check_layout(root)
    warning = capsys.readouterr().err
    assert "huge.png (DecompressionBombError" in warning
    assert not is_usable_image(root / "train" / "red" / "huge.png")


def test_a_full_disk_mid_write_is_one_line_naming_the_target_and_keeps_the_old_file(tmp_path):
    import errno

    from cnnbase.atomic import atomic_write

    target = tmp_path / "best.pth"
    target.write_bytes(b"the previous checkpoint")

    def full_disk(tmp):
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=f"cannot write {target}: No space left on device"):
        atomic_write(target, full_disk)
    assert target.read_bytes() == b"the previous checkpoint" and [p.name for p in tmp_path.iterdir()] == ["best.pth"]
