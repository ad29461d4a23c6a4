"""Transfer learning, torch side: head surgery, freezing, training modes, feature cache, resume,
CLI and data-layout errors. Tiny data (32px, a few images per class), a few seconds per run."""

from __future__ import annotations

import copy
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from divergence import check_divergence_keeps_the_good_run
from image_folders import interrupted_after_first_epoch, write_colours
from PIL import Image
from run_records import check_run_record
from torch_helpers import randomise

import cnntoydata
import torch_impl
import torch_impl.finetune as ft
from cnntune import FinetuneOptions
from cnntune.folders import DataLayoutError
from torch_impl.__main__ import main as cli_main
from torch_impl.distributed import select_device
from torch_impl.surgery import (
    MLPHead,
    freeze_backbone,
    frozen_in_eval,
    param_groups,
    replace_head,
    trainable_names,
    unfreeze,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(size=32, batch_size=8, progress=False)
pytestmark = pytest.mark.filterwarnings("ignore:feature extraction without weights")


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    """Three classes told apart by colour alone (see image_folders.write_colours)."""
    return write_colours(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A resnet18 checkpoint with random weights and random BatchNorm statistics (defaults would
    hide a buffer that moved back to its start), 1000 classes like torchvision's."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    torch_impl.save_state_dict(randomise(torch_impl.resnet18(), seed=1).state_dict(), path)
    return path


def _state(path: Path) -> dict:
    return torch_impl.read_state_dict(path)


def _backbone_keys(state: dict) -> list:
    return [k for k in state if not k.startswith("fc.")]


# ----------------------------------------------------------------------------- cnntoydata


def test_toydata_is_deterministic_disjoint_atomic_and_framework_free(tmp_path):
    a = cnntoydata.generate(tmp_path / "a", part="target", train_per_class=3, val_per_class=2, size=32)
    b = cnntoydata.generate(tmp_path / "b", part="target", train_per_class=3, val_per_class=2, size=32)
    c = cnntoydata.generate(tmp_path / "c", part="target", train_per_class=3, val_per_class=2, size=32, seed=1)
    subset = cnntoydata.generate(tmp_path / "s", classes=["ring"], train_per_class=3, val_per_class=2, size=32)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 5 * 5 and sorted(p.name for p in (a / "train").iterdir()) == sorted(cnntoydata.PARTS["target"])
    assert all(filecmp.cmp(a / f, b / f, shallow=False) for f in files)
    assert not all(filecmp.cmp(a / f, c / f, shallow=False) for f in files)
    assert all(
        filecmp.cmp(a / f, subset / f, shallow=False) for f in files if f.parts[1] == "ring"
    )  # images do not depend on the other classes
    assert not set(cnntoydata.PARTS["pretrain"]) & set(cnntoydata.PARTS["target"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "s"]  # no temp folders left
    assert (
        cnntoydata.generate(tmp_path / "a", part="target", train_per_class=3, val_per_class=2, size=32) == a
    )  # reused as is
    with pytest.raises(FileExistsError, match="does not hold this cnntoydata dataset"):
        cnntoydata.generate(tmp_path / "a", part="pretrain", train_per_class=3, val_per_class=2, size=32)
    code = (
        "import sys, cnntoydata, cnntune, cnntune.loop, cnntune.cli; cnntoydata.generate(sys.argv[1], "
        "train_per_class=1, val_per_class=1, size=16); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'keras', 'tensorflow', 'jax')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "free")], cwd=ROOT, check=True)


# ----------------------------------------------------------------------------- surgery


def test_replace_head_keeps_the_path_and_num_classes():
    model = replace_head(torch_impl.resnet18(), num_classes=5)
    assert isinstance(model.fc, torch.nn.Linear) and model.fc.out_features == 5 and model.num_classes == 5
    assert model.spec.num_classes == 5 and model.spec.node("fc").out == 5
    lenet = replace_head(torch_impl.lenet5(), num_classes=4, hidden=16)
    head = lenet.get_classifier()
    assert isinstance(head, MLPHead) and head is lenet.classifier[2] and lenet.num_classes == 4
    assert [k for k in lenet.state_dict() if k.startswith("classifier.2.")][:2] == [
        "classifier.2.0.weight",
        "classifier.2.0.bias",
    ]
    assert lenet.eval()(torch.zeros(2, 1, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        replace_head(lenet, 0)


def test_unfreeze_last_block_makes_exactly_the_last_stage_and_head_trainable():
    model = replace_head(torch_impl.resnet18(), 3)
    names = [n for n, _ in model.named_parameters()]
    unfreeze(model, last_n_blocks=1)
    assert trainable_names(model) == [n for n in names if n.startswith(("layer4.", "fc."))]
    held = frozen_in_eval(model)
    assert "layer3.1.bn2" in held and "bn1" in held and not any(p.startswith("layer4") for p in held)
    groups = {g["name"]: g for g in param_groups(model, lr=1e-2, backbone_lr_factor=0.1)}
    assert groups["classifier"]["lr"] == 1e-2 and groups["backbone"]["lr"] == pytest.approx(1e-3)
    assert len(groups["classifier"]["params"]) == 2 and len(groups["backbone"]["params"]) == sum(
        n.startswith("layer4.") for n in names
    )
    freeze_backbone(model)
    assert trainable_names(model) == ["fc.weight", "fc.bias"] and list(param_groups(model, 1e-2)[0]["params"]) == [
        model.fc.weight,
        model.fc.bias,
    ]
    unfreeze(model)
    assert trainable_names(model) == names and frozen_in_eval(model) == []
    lenet = unfreeze(replace_head(torch_impl.lenet5(), 3), last_n_blocks=1)  # stages named by dotted paths
    assert trainable_names(lenet) == [
        "features.6.weight",
        "features.6.bias",
        "classifier.0.weight",
        "classifier.0.bias",
        "classifier.2.weight",
        "classifier.2.bias",
    ]
    with pytest.raises(ValueError, match="from 0 to 5 .*received last_n_blocks=6"):
        unfreeze(model, last_n_blocks=6)


def test_frozen_batchnorm_keeps_its_statistics_through_model_train():
    model = freeze_backbone(replace_head(randomise(torch_impl.resnet18(), seed=2), 3))
    before = copy.deepcopy(model.state_dict())
    model.train()
    model(torch.randn(4, 3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    twin = copy.deepcopy(model).train()  # the hold is state on the modules: it survives a copy
    twin(torch.randn(4, 3, 32, 32))
    assert torch.equal(before["layer1.0.bn1.running_var"], twin.layer1[0].bn1.running_var)
    unfreeze(model).train()
    model(torch.randn(4, 3, 32, 32))
    assert not torch.equal(before["bn1.running_mean"], model.bn1.running_mean)


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert select_device(None).type in ("cpu", "mps")
        with pytest.raises(ValueError, match="torch.cuda.is_available"):
            select_device("cuda")


# ----------------------------------------------------------------------------- training


def test_feature_extraction_leaves_backbone_bit_identical_and_trains_the_head(
    colours, pretrained, tmp_path, monkeypatch
):
    initial = {}

    def spy(model, num_classes, hidden=None):  # the new head as finetune creates it
        model = torch_impl.surgery.replace_head(model, num_classes, hidden)
        initial.update(copy.deepcopy(model.get_classifier().state_dict()))
        return model

    monkeypatch.setattr(ft, "replace_head", spy)
    # augment: no cache, so the live backbone runs in model.train() every step
    result = ft.finetune(
        data=str(colours),
        mode="feature-extract",
        weights=str(pretrained),
        augment=True,
        epochs=1,
        out=str(tmp_path),
        **TINY,
    )
    assert result.cache_seconds is None
    before, after = _state(pretrained), _state(tmp_path / "last.safetensors")
    keys = _backbone_keys(before)
    assert keys == _backbone_keys(after) and any("running_var" in k for k in keys)
    assert all(torch.equal(before[k], after[k]) for k in keys)  # parameters and BatchNorm buffers
    assert not torch.equal(initial["weight"], after["fc.weight"]) and after["fc.weight"].shape == (3, 512)


@pytest.mark.parametrize("last_n_blocks", [None, 1])
def test_fine_tuning_changes_the_unfrozen_backbone(colours, pretrained, tmp_path, last_n_blocks):
    ft.finetune(
        data=str(colours),
        mode="fine-tune",
        weights=str(pretrained),
        last_n_blocks=last_n_blocks,
        epochs=1,
        out=str(tmp_path),
        **TINY,
    )
    before, after = _state(pretrained), _state(tmp_path / "last.safetensors")
    changed = {k for k in _backbone_keys(before) if not torch.equal(before[k], after[k])}
    assert {"layer4.1.conv2.weight", "layer4.0.bn1.running_mean"} <= changed
    if last_n_blocks is None:
        assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight"} <= changed
    else:
        assert changed and all(k.startswith("layer4.") for k in changed)


def test_cached_and_live_feature_extraction_agree_and_learn(colours, tmp_path):
    cached = ft.finetune(data=str(colours), mode="feature-extract", epochs=3, out=str(tmp_path / "cached"), **TINY)
    live = ft.finetune(
        data=str(colours), mode="feature-extract", cache=False, epochs=3, out=str(tmp_path / "live"), **TINY
    )
    assert cached.cache_seconds is not None and live.cache_seconds is None
    assert [h["val_acc"] for h in cached.history] == [h["val_acc"] for h in live.history]
    assert [h["train_loss"] for h in cached.history] == pytest.approx([h["train_loss"] for h in live.history], rel=1e-4)
    assert cached.best_val_acc >= 0.9  # three colours, chance is 1/3


def test_resume_continues_like_an_uninterrupted_run(colours, tmp_path, monkeypatch):
    options = FinetuneOptions(
        data=str(colours), model="lenet5", mode="fine-tune", augment=True, lr=3e-3, batch_size=8, progress=False
    )
    straight = ft.finetune(options, epochs=2, out=str(tmp_path / "straight"))
    first = interrupted_after_first_epoch(
        ft, ft.TorchAdapter, options, monkeypatch, epochs=2, out=str(tmp_path / "resumed")
    )
    resumed = ft.finetune(options, epochs=2, resume=str(tmp_path / "resumed"))
    assert [h["epoch"] for h in resumed.history] == [1, 2] and len(resumed.epoch_times) == 1
    assert resumed.history[0] == first["history"][0]
    assert [h["val_acc"] for h in resumed.history] == [h["val_acc"] for h in straight.history]
    a, b = _state(tmp_path / "straight" / "last.safetensors"), _state(tmp_path / "resumed" / "last.safetensors")
    for key in a:  # without the optimizer state (Adam's moments and step) the second epoch differs
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert json.loads((tmp_path / "resumed" / "history.json").read_text())["epochs"] == resumed.history
    model, info = ft.load_checkpoint(tmp_path / "resumed" / "last.json")
    assert info["epoch"] == 2 and model.num_classes == 3 and info["classes"] == ["blue", "green", "red"]
    with pytest.raises(ValueError, match="cannot resume .*--hidden None.*received --hidden 8"):
        ft.finetune(options, epochs=3, hidden=8, resume=str(tmp_path / "resumed"))


# ----------------------------------------------------------------------------- CLI and errors


def test_cli_runs_end_to_end_on_the_embedded_data(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "CLASSIC_CNNS_CACHE": str(tmp_path / "cache"), "CUDA_VISIBLE_DEVICES": ""}
    args = [
        "finetune",
        "--model",
        "lenet5",
        "--mode",
        "fine-tune",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "torch_impl", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "best val accuracy" in proc.stdout
    for name in ("best.safetensors", "best.json", "best.optim.pth", "last.safetensors", "history.json", "curves.png"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    history = json.loads((out / "history.json").read_text())
    assert history["classes"] == sorted(cnntoydata.PARTS["target"]) and [h["epoch"] for h in history["epochs"]] == [1]
    # the header: the first line, one process (the twin of the torchrun test's "2 processes, gloo")
    assert proc.stdout.splitlines()[0] == history["run"]["line"] and proc.stdout.count(" finetune: lenet5, ") == 1
    check_run_record(history["run"], "torch", world_size=1, backend=None, batch=32)
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("cnntoydata-")]
    assert _state(out / "best.safetensors")["classifier.2.weight"].shape == (5, 84)


def test_bad_data_folder_says_which_layout_was_expected(tmp_path, capsys):
    for split, cls in (("train", "a"), ("train", "b"), ("val", "a")):
        (tmp_path / "mismatch" / split / cls).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "mismatch" / split / cls / "0.png")
    (tmp_path / "noval" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataLayoutError, match=r"only in train/: \['b'\]"):
        ft.finetune(data=str(tmp_path / "mismatch"), **TINY)
    with pytest.raises(DataLayoutError, match="has no val/ subfolder.*expected an image folder laid out as"):
        ft.finetune(data=str(tmp_path / "noval"), **TINY)
    assert cli_main(["finetune", "--data", str(tmp_path / "missing"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "DIR/train/<class_a>/*.png" in err
    with pytest.raises(ValueError, match="lenet5 takes only 32x32 inputs"):
        ft.finetune(data=str(tmp_path / "mismatch"), model="lenet5", size=64, progress=False)
    with pytest.raises(ValueError, match="applies to mode 'fine-tune'"):
        FinetuneOptions(mode="feature-extract", last_n_blocks=1)


def test_a_diverged_run_stops_with_one_line_and_keeps_the_good_checkpoint(colours, tmp_path, capsys, monkeypatch):
    """A real divergence through the CLI (tests/divergence.py, the same for both frameworks)."""
    check_divergence_keeps_the_good_run("torch", cli_main, colours, tmp_path, capsys, monkeypatch)
