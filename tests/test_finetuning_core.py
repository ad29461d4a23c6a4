"""The framework-neutral fine-tuning core: defaults that depend on the weights, the learning-rate
schedule both frameworks share, which layers train, the input size chosen for the data, the
checkpoint format."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import cnnspec
from cnntune import FinetuneOptions
from cnntune.options import WARMUP_START
from cnntune.policy import (
    build_options,
    check_optimizer_epoch,
    choose_size,
    lr_factor,
    lr_factors,
    read_checkpoint_info,
    steps_per_epoch,
    trained_paths,
    use_amp,
    warmup_steps,
)


def test_defaults_train_the_whole_network_from_scratch_and_the_head_on_weights():
    scratch = FinetuneOptions().resolved()
    assert (scratch.mode, scratch.backbone_lr_factor, scratch.augment, scratch.lr) == ("fine-tune", 1.0, True, 3e-3)
    pretrained = FinetuneOptions(weights="IMAGENET1K_V1").resolved()
    assert (pretrained.mode, pretrained.backbone_lr_factor, pretrained.augment, pretrained.lr) == (
        "feature-extract",
        0.1,
        False,
        1e-2,
    )
    assert pretrained.use_cache and not scratch.use_cache
    tuned = FinetuneOptions(weights="imagenet", mode="fine-tune").resolved()
    assert (tuned.backbone_lr_factor, tuned.augment, tuned.lr) == (0.1, True, 1e-3)
    assert FinetuneOptions(weights="x.pth", last_n_blocks=1).resolved().mode == "fine-tune"
    # a resumed run keeps the choices of the run it continues
    resumed = FinetuneOptions().resolved({"mode": "feature-extract", "weights": "r.pth", "augment": False, "lr": 0.5})
    assert (resumed.mode, resumed.augment, resumed.lr, resumed.backbone_lr_factor) == (
        "feature-extract",
        False,
        0.5,
        0.1,
    )
    with pytest.raises(ValueError, match="label_smoothing must be >= 0 and < 1.0"):
        FinetuneOptions(label_smoothing=1.0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        FinetuneOptions(schedule="step")


def test_schedule_warms_up_then_decays_to_zero():
    total, warm = 100, warmup_steps(1.0, 10, 100)
    factors = [lr_factor(s, total, warm) for s in range(total + 1)]
    assert (
        warm == 10
        and factors[0] == WARMUP_START
        and factors[10] == 1.0
        and factors[total] == pytest.approx(0.0, abs=1e-12)
    )
    assert all(a < b for a, b in zip(factors[:10], factors[1:11])) and all(
        a >= b for a, b in zip(factors[10:], factors[11:])
    )
    assert warmup_steps(5.0, 10, 40) == 20  # at most half the run
    assert lr_factor(7, 100, 10, "constant") == 1.0


def test_the_schedule_is_one_table_of_every_step():
    """Both adapters read this table (torch sets each group's rate from it before a step, Keras
    indexes it with the optimizer's step count): the last entry also serves any step past the end."""
    total, warm = 50, 8
    table = lr_factors(total, warm)
    assert len(table) == total + 1 and table == [lr_factor(s, total, warm) for s in range(total + 1)]
    assert table[0] == WARMUP_START and table[warm] == 1.0 and table[-1] == pytest.approx(0.0, abs=1e-12)
    assert lr_factors(10, 2, "constant") == [1.0] * 11
    assert steps_per_epoch(17, 8) == 2 and steps_per_epoch(16, 8) == 2 and steps_per_epoch(18, 8) == 3


def test_which_layers_train_is_decided_once():
    resnet = cnnspec.get("resnet18")
    assert trained_paths(resnet, "feature-extract") == ["fc"]
    assert trained_paths(resnet, "fine-tune") == [""]  # everything
    assert trained_paths(resnet, "fine-tune", 1) == ["layer4", "avgpool", "flatten", "fc"]
    assert trained_paths(resnet, "fine-tune", 0) == ["avgpool", "flatten", "fc"]
    with pytest.raises(ValueError, match=r"last_n_blocks must be an int from 0 to 5 \(resnet18 has 5 stages"):
        trained_paths(resnet, "fine-tune", 6)
    # GoogLeNet is fine-tuned without its auxiliary heads; published weights add what their file needs
    assert build_options("googlenet") == {"aux_logits": False} and build_options("resnet18") == {}
    assert build_options("googlenet", "IMAGENET1K_V1")["transform_input"] is True
    assert build_options("googlenet", "IMAGENET1K_V1", {"transform_input": False})["transform_input"] is False
    assert build_options("googlenet", "some/file.pth") == {"aux_logits": False}


def test_amp_and_interrupted_saves_are_judged_once():
    with pytest.warns(UserWarning, match=r"amp \(mixed_float16\) is used on a GPU only; running in float32 on cpu:0"):
        assert use_amp(True, False, "mixed_float16", "a GPU", "cpu:0") is False
    assert use_amp(True, True, "float16 autocast", "CUDA", "cuda") is True
    assert use_amp(False, False, "float16 autocast", "CUDA", "cpu") is False
    check_optimizer_epoch("run", 3, 3)
    with pytest.raises(ValueError, match=r"run: weights and optimizer state are from different epochs \(3 vs 2\)"):
        check_optimizer_epoch("run", 3, 2)


def _folder(root, side):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (side + 40, side)).save(root / split / cls / f"{i}.png")
    return root


def test_size_follows_the_images(tmp_path):
    resnet, alexnet = cnnspec.get("resnet18"), cnnspec.get("alexnet")
    assert choose_size(resnet, None, _folder(tmp_path / "photos", 300)) == 128  # from scratch: capped for a CPU
    assert choose_size(resnet, None, tmp_path / "photos", crop_size=224) == 224  # published weights: their crop
    assert choose_size(resnet, None, _folder(tmp_path / "digits", 8)) == 32
    assert choose_size(resnet, None, _folder(tmp_path / "shapes", 64)) == 64
    assert choose_size(alexnet, None, tmp_path / "digits") == 64  # raised to the smallest size the model takes
    assert choose_size(cnnspec.get("lenet5"), None, tmp_path / "photos") == 32  # its only size
    assert choose_size(resnet, 96, tmp_path / "photos") == 96
    with pytest.raises(ValueError, match="lenet5 takes only 32x32"):
        choose_size(cnnspec.get("lenet5"), 64, tmp_path / "photos")


def test_checkpoint_records_its_framework(tmp_path):
    (tmp_path / "last.json").write_text(json.dumps({"format": 2, "framework": "keras", "model": "resnet18"}))
    assert read_checkpoint_info(tmp_path, "keras")["_dir"] == str(tmp_path)
    with pytest.raises(
        ValueError, match="is a keras checkpoint; resume it with python -m keras_impl finetune --resume"
    ):
        read_checkpoint_info(tmp_path, "torch")
    (tmp_path / "last.json").write_text(
        json.dumps({"format": 1, "model": "resnet18"})
    )  # format 1: torch's had no framework
    assert read_checkpoint_info(tmp_path / "last.json", "torch")["model"] == "resnet18"
    (tmp_path / "last.json").write_text(json.dumps({"format": 9}))
    with pytest.raises(ValueError, match="is not a fine-tune checkpoint"):
        read_checkpoint_info(tmp_path, "torch")
