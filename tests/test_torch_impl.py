"""torch_impl against torchvision: same keys, same shapes, identical outputs from a saved file."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision
from conftest import TORCHVISION_TWINS, model_params
from torch_helpers import max_abs_diff, randomise

import cnnspec
import torch_impl
from torch_impl import SpecModel

SIZES = [(224, 224), (193, 161)]


def torchvision_model(name: str, **kwargs) -> torch.nn.Module:
    if name == "googlenet":
        kwargs.setdefault("init_weights", False)
        kwargs.setdefault("aux_logits", True)
    return getattr(torchvision.models, name)(weights=None, **kwargs)


@pytest.mark.parametrize("name", model_params(TORCHVISION_TWINS))
def test_torchvision_checkpoint_loads_and_gives_identical_outputs(name, tmp_path):
    tv = randomise(torchvision_model(name), seed=1).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(tv.state_dict(), path)
    ours = torch_impl.get_model(name, weights=str(path)).eval()
    assert list(ours.state_dict()) == list(tv.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == cnnspec.analyse(ours.spec).total_params
    for size in SIZES[:1] if ours.spec.fixed_input else SIZES:  # ViT's position embedding fixes its size
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            assert max_abs_diff(ours(x), tv(x)) <= 1e-6, size


def test_safetensors_checkpoint_and_transform_input(tmp_path):
    tv = randomise(torchvision_model("googlenet", transform_input=True), seed=3).eval()
    path = tmp_path / "googlenet.safetensors"
    torch_impl.save_state_dict(tv.state_dict(), path)
    ours = torch_impl.googlenet(weights=path, transform_input=True).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert max_abs_diff(ours(x), tv(x)) <= 1e-6


def test_googlenet_training_returns_aux_logits_like_torchvision(tmp_path):
    tv = randomise(torchvision_model("googlenet"), seed=4)
    ours = torch_impl.googlenet(weights=tv.state_dict())
    tv.train(), ours.train()
    x = torch.randn(2, 3, 224, 224)
    torch.manual_seed(0)
    out_tv = tv(x)
    torch.manual_seed(0)
    out = ours(x)
    assert type(out).__name__ == "GoogLeNetOutputs" and out._fields == out_tv._fields
    for a, b in zip(out, out_tv):
        assert a.shape == b.shape == (2, 1000)
    # without aux heads, a checkpoint's aux weights are ignored, as torchvision does
    no_aux = torch_impl.googlenet(weights=tv.state_dict(), aux_logits=False).train()
    assert isinstance(no_aux(x), torch.Tensor)
    assert not any(k.startswith("aux") for k in no_aux.state_dict())


@pytest.mark.parametrize("name", ["lenet5", "alexnet_original"])
def test_models_without_torchvision_twin_match_their_spec(name):
    model = torch_impl.get_model(name).eval()
    spec = model.spec
    a = cnnspec.analyse(spec)
    assert sum(p.numel() for p in model.parameters()) == a.total_params
    x = torch.randn(2, *spec.input_size)
    shapes = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, p=p: shapes.__setitem__(p, tuple(o.shape[1:])))
        for p, m in model.named_modules()
        if p
    ]
    with torch.no_grad():
        assert model(x).shape == (2, spec.num_classes)
    for h in hooks:
        h.remove()
    for layer in a.layers:
        assert shapes[layer.path] == layer.output_shape, layer.path


def test_a_changed_spec_number_is_detected(tmp_path):
    """The twin of the parity tests above: one BatchNorm eps changed in the spec breaks equality."""
    tv = randomise(torchvision_model("googlenet", aux_logits=False), seed=5).eval()
    spec = cnnspec.replace_at(cnnspec.get("googlenet", aux_logits=False), "inception4c.branch2.1.bn", eps=1e-5)
    broken = SpecModel(spec)
    broken.load_state_dict(tv.state_dict())
    broken.eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert max_abs_diff(broken(x), tv(x)) > 1e-6
    # one input for both models: the same spec with its padding unchanged matches torchvision (the
    # comparison can pass), the first conv's padding 2 -> 1 does not
    tva = randomise(torchvision.models.alexnet(weights=None), seed=6).eval()
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    for padding, differs in ((2, False), (1, True)):
        model = SpecModel(cnnspec.replace_at(cnnspec.get("alexnet"), "features.0", padding=padding))
        model.load_state_dict(tva.state_dict())
        with torch.no_grad():
            assert (max_abs_diff(model.eval()(x), tva(x)) > 1e-6) is differs, padding


@torch.no_grad()
def test_init_schemes_follow_torchvision():
    vgg = torch_impl.vgg11(num_classes=10)
    assert float(vgg.classifier[6].bias.abs().max()) == 0.0
    assert 0.005 < float(vgg.classifier[0].weight.std()) < 0.015
    res = torch_impl.resnet18(zero_init_residual=True)
    assert float(res.layer1[0].bn2.weight.abs().max()) == 0.0
    assert float(res.bn1.weight.min()) == 1.0
    g = torch_impl.googlenet(init_weights=True)
    assert 0.009 < float(g.fc.weight.std()) < 0.011  # trunc_normal_(std=0.01, a=-2, b=2) like torchvision


def test_clear_errors_for_bad_input_and_weights(tmp_path):
    model = torch_impl.resnet18(num_classes=10).eval()
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 3, H, W\), received \(1, 1, 64, 64\)"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="smaller than"):
        torch_impl.alexnet().eval()(torch.zeros(1, 3, 30, 30))
    with pytest.raises(ValueError, match="only takes 227x227"):
        torch_impl.alexnet_original()(torch.zeros(1, 3, 224, 224))
    with pytest.raises(FileNotFoundError):
        torch_impl.resnet18(weights=tmp_path / "missing.pth")
    bad = tmp_path / "weights.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="expected one of"):
        torch_impl.resnet18(weights=bad)
    with pytest.raises(ValueError, match="lenet5 has no published weights"):
        torch_impl.lenet5(weights="DEFAULT")
    # a checkpoint for 1000 classes into a 10-class model names the classifier and the fix
    full = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), full)
    with pytest.raises(ValueError, match=r"fc.weight has shape \(1000, 512\).*num_classes=1000"):
        torch_impl.resnet18(weights=full, num_classes=10)
    with pytest.raises(ValueError, match="missing keys"):
        torch_impl.resnet34(weights=full)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"fc.weight": _Evil()}, f)
    with pytest.raises(ValueError, match="weights_only=True"):
        torch_impl.resnet18(weights=path)


def _naive_save(state, path):
    """The writer save_state_dict must not be: straight into the target."""
    import safetensors.torch

    safetensors.torch.save_file(dict(state), str(path)) if str(path).endswith(".safetensors") else torch.save(
        dict(state), path
    )


def _damage_of_a_failed_save(save, folder, monkeypatch, suffix, previous):
    """Runs ``save`` with a writer that writes the first bytes of the file it was given and then
    fails (a full disk); returns what is wrong afterwards: a target that differs from before (absent,
    or the previous file byte for byte) and files left beside it. Empty: nothing was damaged."""
    import safetensors.torch

    folder.mkdir()
    target = folder / f"lenet{suffix}"
    if previous is not None:
        target.write_bytes(previous)

    def half_written(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"\x00\x01 the first bytes")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(safetensors.torch, "save_file", half_written)
        patch.setattr(torch, "save", half_written)
        with pytest.raises(OSError, match="No space left"):
            save(torch_impl.lenet5().state_dict(), target)
    damage = []
    if (target.read_bytes() if target.exists() else None) != previous:
        damage.append(f"{target.name} changed")
    damage += [f"{p.name} left" for p in folder.iterdir() if p != target]
    return damage


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("previous", [None, b"the previous good file"])
def test_save_is_atomic(tmp_path, monkeypatch, suffix, previous):
    """A writer that fails after writing part of the file leaves the target as it was (absent, or
    the previous file byte for byte) and no temp file; the twin: the same failure in a writer that
    writes in place is reported as damage."""
    assert (
        _damage_of_a_failed_save(torch_impl.save_state_dict, tmp_path / "atomic", monkeypatch, suffix, previous) == []
    )
    assert _damage_of_a_failed_save(_naive_save, tmp_path / "naive", monkeypatch, suffix, previous) == [
        f"lenet{suffix} changed"
    ]


@pytest.mark.parametrize("name", ["alexnet", "vgg11_bn", "googlenet", "resnet18"])
def test_in_place_relu_and_add_never_touch_the_callers_input(name):
    """ReLUs and residual adds work in place (torchvision's speed); the input, and autograd, are safe."""
    model = torch_impl.get_model(name, **({"aux_logits": False} if name == "googlenet" else {}))
    x = torch.randn(2, 3, 64, 64)
    before = x.clone()
    with torch.no_grad():
        model.eval()(x)
    assert torch.equal(x, before)
    model.train()(x.requires_grad_()).sum().backward()  # an in-place op autograd needed would raise here
    assert torch.equal(x.detach(), before) and x.grad is not None
