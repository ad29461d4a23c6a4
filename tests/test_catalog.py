"""The published weights (each family's entries, cnnspec.published) equal torchvision's weight enums,
field by field."""

from __future__ import annotations

import math
import re

import pytest

import cnnspec
from cnnspec import published

torchvision = pytest.importorskip("torchvision")
from torchvision.models import get_model_weights  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402


def _torchvision_enums():
    out = {}
    for name in cnnspec.names():
        try:
            out[name] = get_model_weights(name)
        except ValueError:  # not a torchvision model (lenet5, alexnet_original)
            continue
    return out


def _docs(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_catalog_covers_every_torchvision_model_and_weight():
    enums = _torchvision_enums()
    assert set(enums) == set(published.models_with_weights())
    for model, enum in enums.items():
        assert set(published.weights_names(model)) == {w.name for w in enum}, model
        assert published.default_name(model) == enum.DEFAULT.name, model


@pytest.mark.parametrize("model", sorted(_torchvision_enums()))
def test_catalog_entry_equals_torchvision_field_by_field(model):
    for tv in get_model_weights(model):
        ours = cnnspec.published_weights(model, tv.name)
        meta = tv.meta
        assert ours.url == tv.url
        assert tv.url.rsplit("/", 1)[-1].find(f"-{ours.sha256_prefix}.") > 0
        if meta["categories"] is None:
            assert ours.features_only and ours.categories is None and not ours.classifies
        else:
            assert not ours.features_only
            assert ours.category_names() == list(meta["categories"])
            assert ours.num_classes == len(meta["categories"])
        preset = tv.transforms()
        assert [ours.transforms.crop_size] == list(preset.crop_size)
        assert [ours.transforms.resize_size] == list(preset.resize_size)
        assert list(ours.transforms.mean) == list(preset.mean)
        assert list(ours.transforms.std) == pytest.approx(list(preset.std), rel=1e-12)
        assert InterpolationMode(ours.transforms.interpolation) == preset.interpolation
        metrics = meta["_metrics"]["ImageNet-1K"]
        for ours_acc, theirs in ((ours.acc1, metrics["acc@1"]), (ours.acc5, metrics["acc@5"])):
            assert (math.isnan(ours_acc) and math.isnan(theirs)) or ours_acc == theirs
        assert ours.num_params == meta["num_params"]
        assert ours.gflops == meta["_ops"]
        assert ours.file_size_mb == meta["_file_size"]
        assert ours.min_size == tuple(meta["min_size"])
        assert ours.recipe == meta["recipe"]
        assert _docs(ours.docs) == _docs(meta["_docs"])


def test_models_without_weights_say_why():
    for model in ("lenet5", "alexnet_original"):
        assert published.weights_names(model) == []
        with pytest.raises(ValueError, match=f"{model} has no published weights: "):
            cnnspec.published_weights(model)
    with pytest.raises(KeyError, match="unknown model 'resnet19'"):
        cnnspec.published_weights("resnet19")


def test_unknown_weight_name_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"resnet50 has no published weights named 'IMAGENET1K_V3'; "
        r"it has IMAGENET1K_V2 \(DEFAULT\), IMAGENET1K_V1",
    ):
        cnnspec.published_weights("resnet50", "IMAGENET1K_V3")
    assert cnnspec.published_weights("resnet50", "imagenet").name == "IMAGENET1K_V2"


def test_checkpoint_options_and_dropped_heads():
    g = cnnspec.published_weights("googlenet")
    assert g.model_options() == {"transform_input": True} and g.dropped == ("aux1", "aux2")
    assert all(set(g.model_options()) <= set(cnnspec.options(g.model)) for g in [g])


def test_mirror_replaces_the_base_url_only(monkeypatch):
    w = cnnspec.published_weights("resnet18")
    monkeypatch.delenv(published.MIRROR_ENV, raising=False)
    assert w.download_url() == w.url
    monkeypatch.setenv(published.MIRROR_ENV, "http://mirror.internal/torch/")
    assert w.download_url() == "http://mirror.internal/torch/resnet18-f37072fd.pth"


def test_is_weights_name_tells_names_from_paths():
    assert (
        published.is_weights_name("IMAGENET1K_V1")
        and published.is_weights_name("DEFAULT")
        and published.is_weights_name("imagenet")
    )
    for path in ("resnet18-f37072fd.pth", "weights/r18", "r18.weights.h5", "Imagenet"):
        assert not published.is_weights_name(path)


def test_readme_table_is_the_catalog():
    from pathlib import Path

    from cnnspec.__main__ import weights_table

    assert weights_table() in (Path(__file__).parents[1] / "README.md").read_text()
