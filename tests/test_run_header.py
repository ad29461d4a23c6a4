"""The run's header (cnntune.header): one line built from the resolved options, where the run
executes and the data-derived choices; the same facts in history.json's "run". The runs that
print it are checked where they already run: the CLI tests of each framework (one process),
tests/test_distributed_torch.py (torchrun, 2 gloo processes) and tests/test_distributed_keras.py
(DataParallel over two jax host devices); these check the line itself, without a framework."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from run_records import check_run_record

from cnntune.header import Placement, augmentation, run_header
from cnntune.options import FinetuneOptions

SINGLE = Placement("cpu")
TORCHRUN = Placement("cpu", 2, "gloo")
DATA_PARALLEL = Placement("cpu", 2, "jax DataParallel", "device")


# the recipe given, not defaulted: the defaults change (issue 34), what the line says of them must not
RECIPE: dict[str, Any] = {"lr": 3e-3, "weight_decay": 0.05, "label_smoothing": 0.1, "warmup_epochs": 1.0, "epochs": 5}


def _opts(**kw: Any) -> FinetuneOptions:
    return dataclasses.replace(FinetuneOptions(model="resnet18", **{**RECIPE, **kw}).resolved(), size=64)


def test_the_placement_says_processes_devices_and_backend():
    assert SINGLE.describe() == "1 process"
    assert TORCHRUN.describe() == "2 processes, gloo"
    assert DATA_PARALLEL.describe() == "2 devices, jax DataParallel"


def test_the_line_has_model_mode_size_batch_placement_and_recipe():
    line = run_header("torch", _opts(batch_size=16), TORCHRUN).line()
    assert line.startswith("torch finetune: resnet18, fine-tune from scratch, 64x64 px, ")
    assert "batch 16 per process (32 total), device cpu, 2 processes, gloo; recipe: AdamW lr 0.003, " in line
    for part in ("weight decay 0.05", "label smoothing 0.1", "warm-up 1 epoch then cosine", "5 epochs"):
        assert part in line, part
    assert line.endswith(f", augmentation {augmentation(_opts())}") and augmentation(_opts()) != "none"


def test_a_single_process_line_claims_no_backend_and_no_second_process():
    """Twin of the torchrun line: the same options on one process say so."""
    one, two = (run_header("torch", _opts(), p) for p in (SINGLE, TORCHRUN))
    assert "gloo" not in one.line() and "processes" not in one.line() and "1 process" in one.line()
    assert (one.batch_total, two.batch_total) == (32, 64)
    assert one.to_dict()["backend"] is None and one.to_dict()["world_size"] == 1


def test_the_recipe_follows_the_resolved_options():
    line = run_header(
        "keras",
        _opts(
            weights="IMAGENET1K_V1",
            mode="fine-tune",
            lr=1e-3,
            backbone_lr_factor=0.1,
            schedule="constant",
            label_smoothing=0.0,
        ),
        DATA_PARALLEL,
        keras_backend="jax",
    ).line()
    assert line.startswith("keras/jax finetune: resnet18, fine-tune from IMAGENET1K_V1, ")
    assert "batch 32 per device (64 total), device cpu, 2 devices, jax DataParallel" in line
    assert "lr 0.001 (backbone x0.1)" in line and "constant lr" in line and "label smoothing 0," in line
    frozen = run_header("torch", _opts(weights="IMAGENET1K_V1"), SINGLE)
    assert "feature-extract from IMAGENET1K_V1" in frozen.line()
    assert "resumed at epoch 3" in run_header("torch", _opts(), SINGLE, resumed_epoch=3).line()


def test_the_augmentation_is_said_in_words():
    assert augmentation(SimpleNamespace(augment=False, crop_scale=0.25, flip="both")) == "none"
    assert (
        augmentation(SimpleNamespace(augment=True, crop_scale=0.25, flip="both"))
        == "RandomResizedCrop area 0.25-1 + horizontal and vertical flips"
    )
    assert augmentation(SimpleNamespace(augment=True, crop_scale=1.0, flip="vertical")) == "vertical flip"
    assert augmentation(SimpleNamespace(augment=True, crop_scale=1.0, flip="none")) == "none"


def test_data_derived_choices_come_with_their_reasons():
    """The slot for defaults chosen from the data: each (choice, why) in the line and in the JSON."""
    choices = [("size 96", "the images' median short side"), ("vertical flips", "the images have no up")]
    head = run_header("torch", _opts(), SINGLE, choices=choices)
    assert head.line().endswith(
        "; chosen: size 96 (the images' median short side), vertical flips (the images have no up)"
    )
    assert head.to_dict()["choices"][1] == {"choice": "vertical flips", "why": "the images have no up"}
    assert "; chosen:" not in run_header("torch", _opts(), SINGLE).line()


def test_the_history_fields_are_the_lines_facts():
    run = run_header("torch", _opts(batch_size=8), TORCHRUN).to_dict()
    check_run_record(run, "torch", world_size=2, backend="gloo", batch=8)
    assert (
        run["recipe"].items()
        >= {
            "optimizer": "AdamW",
            "lr": 0.003,
            "backbone_lr_factor": 1.0,
            "schedule": "cosine",
            "augment": True,
            "augmentation": augmentation(_opts()),
            **RECIPE,
        }.items()
    )
    short = run_header("torch", _opts(epochs=1, augment=False), SINGLE).to_dict()["recipe"]
    assert short["warmup_epochs"] == 0.5 and short["augmentation"] == "none"  # the warm-up run: half of one epoch
    with pytest.raises(ValueError, match="resolved options"):
        run_header("torch", FinetuneOptions(), SINGLE)
