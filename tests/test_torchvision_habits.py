"""torchvision's lookup calls, typed as torchvision users type them, beside torchvision itself:
``list_models(include=..., exclude=...)``, ``get_model_weights(name)`` and its enum,
``get_model(name, weights=...)``, and ``progress=`` on every factory."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torchvision.models import get_model_weights as tv_get_model_weights  # noqa: E402
from torchvision.models import list_models as tv_list_models  # noqa: E402

import cnnspec  # noqa: E402
import torch_impl  # noqa: E402
from torch_impl import get_model, get_model_weights, list_models  # noqa: E402

OURS_ONLY = {"lenet5", "alexnet_original"}  # no torchvision twin


@pytest.mark.parametrize(
    "include, exclude",
    [(None, None), ("vgg1*", None), ("resnet*", None), (["alexnet", "googlenet"], None), ("vgg*", "*_bn"), (None, "*")],
)
def test_list_models_filters_as_torchvision_does(include, exclude):
    ours = list_models(include=include, exclude=exclude)
    theirs = tv_list_models(include=include, exclude=exclude)
    assert ours == sorted(ours)
    assert [m for m in ours if m not in OURS_ONLY] == [m for m in theirs if m in cnnspec.names()]


def test_list_models_by_module_as_torchvision_does():
    assert list_models(torch_impl) == list_models()
    assert list_models(torchvision.models.quantization) == []


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet50", "googlenet", "mobilenet_v2", "vit_b_16"])
def test_get_model_weights_is_torchvisions_enum(name):
    ours, theirs = get_model_weights(name), tv_get_model_weights(name)
    assert {w.name for w in ours} == {w.name for w in theirs}
    assert ours.DEFAULT.name == theirs.DEFAULT.name and ours.DEFAULT is ours[theirs.DEFAULT.name]
    for w in theirs:
        assert ours[w.name].url == w.url
        assert repr(ours[w.name].meta["_metrics"]) == repr(w.meta["_metrics"])  # nan in feature-only files
        assert ours[w.name].meta["categories"] == w.meta["categories"]
    assert repr(ours.DEFAULT) == f"{ours.__name__}.{theirs.DEFAULT.name}"
    assert get_model_weights(getattr(torch_impl, name)) is ours  # the factory works as the name does


def test_a_weights_enum_member_builds_the_model(tmp_path, monkeypatch):
    """torchvision users pass ``get_model_weights(name).DEFAULT`` and ``progress=False``; here from a
    pre-filled torch.hub cache (nothing downloaded), both libraries build the same model from it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    member = get_model_weights("resnet18").DEFAULT
    cached = tmp_path / "hub" / "checkpoints" / member.url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cached)
    ours = get_model("resnet18", weights=member, progress=False).eval()
    theirs = torchvision.models.get_model("resnet18", weights="DEFAULT", progress=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_progress_reaches_the_download(monkeypatch, tmp_path):
    seen = []
    path = tmp_path / "r18.pth"
    torch.save(torch_impl.resnet18().state_dict(), path)

    def download(entry, progress=True):
        seen.append(progress)
        return path

    monkeypatch.setattr(torch_impl.pretrained, "download", download)
    torch_impl.resnet18(weights="DEFAULT", progress=False)
    torch_impl.resnet18(weights="IMAGENET1K_V1")
    assert seen == [False, True]


# the twins: what torchvision refuses, refused here in one line


def test_a_misspelt_keyword_is_refused_with_the_options():
    with pytest.raises(TypeError, match=r"resnet18 does not accept \['progres'\]"):
        torch_impl.resnet18(progres=False)


def test_weights_of_a_model_without_any_say_why():
    with pytest.raises(ValueError, match="lenet5 has no published weights: torchvision publishes no LeNet-5"):
        get_model_weights("lenet5")
    with pytest.raises(ValueError, match="did you mean 'resnet18'"):
        get_model_weights("resnt18")


def test_a_wrong_filter_finds_nothing():
    assert list_models(include="vgg16*") == ["vgg16", "vgg16_bn"] != list_models(include="vgg1*")
    assert list_models(include="nothing*") == [] == tv_list_models(include="nothing*")
