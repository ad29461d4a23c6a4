"""cnnspec alone: registry, shapes, parameter and MAC counts, summary CLI, no framework imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cnnspec
from cnnspec import analyse, published

# torchvision's published figures (weights metadata: num_params, _ops in GFLOPS, i.e. GMACs), taken
# from the published weights' DEFAULT entries (tests/test_catalog.py holds those equal to torchvision's enums):
# a new model's figures are checked with no list here to extend.
PUBLISHED = {
    name: (w.num_params, w.gflops)
    for name in published.models_with_weights()
    for w in [cnnspec.published_weights(name)]
}
NO_WEIGHTS = set(published.no_weights_reasons())


def test_registry_lists_every_model():
    assert set(cnnspec.names()) == set(PUBLISHED) | NO_WEIGHTS
    assert {"alexnet", "vgg16_bn", "googlenet", "resnet152", "mobilenet_v2"} <= set(PUBLISHED)


def test_registry_refuses_duplicates_and_unknowns():
    with pytest.raises(ValueError, match="already registered"):
        cnnspec.register("vgg16")(lambda: None)
    with pytest.raises(KeyError, match="unknown model 'vgg17'"):
        cnnspec.get("vgg17")
    with pytest.raises(TypeError, match="does not accept"):
        cnnspec.get("vgg16", aux_logits=False)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        cnnspec.get("resnet18", num_classes=0)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_torchvision_published(name):
    params, gmacs = PUBLISHED[name]
    spec = cnnspec.get(name, aux_logits=False) if name == "googlenet" else cnnspec.get(name)
    a = analyse(spec, include_aux=False)
    assert a.total_params == params
    assert abs(a.total_macs / 1e9 - gmacs) / gmacs < 0.01
    assert a.output_shape == (1000,)


def test_published_figures_are_torchvision_metadata():
    """The table above is torchvision's own metadata, not typed in from memory."""
    tv = pytest.importorskip("torchvision.models")
    for name, (params, gmacs) in PUBLISHED.items():
        meta = tv.get_model_weights(name).DEFAULT.meta
        assert meta["num_params"] == params, name
        assert abs(meta["_ops"] - gmacs) < 1e-3, name


def test_lenet5_matches_the_1998_paper():
    a = analyse(cnnspec.get("lenet5"))
    shapes = {lyr.path: lyr.output_shape for lyr in a.layers}
    assert shapes["features.0"] == (6, 28, 28)  # C1
    assert shapes["features.2"] == (6, 14, 14)  # S2
    assert shapes["features.3"] == (16, 10, 10)  # C3
    assert shapes["features.5"] == (16, 5, 5)  # S4
    assert shapes["features.6"] == (120, 1, 1)  # C5
    assert shapes["classifier.0"] == (84,)  # F6
    params = {lyr.path: lyr.params for lyr in a.leaves if lyr.params}
    # C1 156, C3 2416 (full connection; the paper's sparse table has 1516), C5 48120, F6 10164, out 850
    assert params == {
        "features.0": 156,
        "features.3": 2416,
        "features.6": 48120,
        "classifier.0": 10164,
        "classifier.2": 850,
    }
    assert a.total_params == 61_706


def test_alexnet_original_matches_the_2012_paper():
    a = analyse(cnnspec.get("alexnet_original"))
    shapes = {lyr.path: lyr.output_shape for lyr in a.layers}
    # paper section 3.5: 55x55x96, 27x27x256, 13x13x384, 13x13x384, 13x13x256, then 4096, 4096, 1000
    assert shapes["features.0"] == (96, 55, 55)
    assert shapes["features.4"] == (256, 27, 27)
    assert shapes["features.8"] == (384, 13, 13)
    assert shapes["features.10"] == (384, 13, 13)
    assert shapes["features.12"] == (256, 13, 13)
    assert shapes["features.14"] == (256, 6, 6)
    assert [lyr.output_shape for lyr in a.leaves if lyr.node.kind == "Linear"] == [(4096,), (4096,), (1000,)]
    # the Caffe reference model's count, with the two-GPU grouping on conv2, conv4, conv5
    assert a.total_params == 60_965_224
    assert cnnspec.get("alexnet_original").node("features.2").alpha == pytest.approx(5e-4)


def test_odd_sizes_and_clear_shape_errors():
    a = analyse(cnnspec.get("googlenet"), (193, 161))
    assert a.output_shape == (1000,)
    assert analyse(cnnspec.get("vgg16"), (193, 161)).layer("features.30").output_shape == (512, 6, 5)
    with pytest.raises(cnnspec.ShapeError, match="only takes 227x227"):
        analyse(cnnspec.get("alexnet_original"), (224, 224))
    with pytest.raises(cnnspec.ShapeError, match="smaller than"):
        analyse(cnnspec.get("alexnet"), (20, 20))
    with pytest.raises(cnnspec.ShapeError, match=r"^alexnet needs an input of at least 63x63, received 62x80 "):
        analyse(cnnspec.get("alexnet"), (62, 80))
    analyse(cnnspec.get("alexnet"), (63, 63))  # the minimum it names fits


def test_min_input_size_is_the_smallest_side_that_fits():
    from cnnspec.analysis import min_input_size

    sizes = {
        name: min_input_size(cnnspec.get(name)) for name in ("alexnet", "googlenet", "vgg16", "resnet50", "lenet5")
    }
    assert sizes == {"alexnet": 63, "googlenet": 31, "vgg16": 32, "resnet50": 1, "lenet5": 32}
    for name, side in sizes.items():
        if side > 1:
            with pytest.raises(cnnspec.ShapeError):
                analyse(cnnspec.get(name), (side - 1, side - 1))


def test_ceil_mode_follows_torch_formula():
    # googlenet at 224: 112 -> ceil((112-3)/2)+1 = 56 with ceil mode (55 without)
    a = analyse(cnnspec.get("googlenet"))
    assert a.layer("maxpool1").output_shape == (64, 56, 56)
    assert a.layer("maxpool4").output_shape == (832, 7, 7)


def test_flatten_source_is_recorded_for_the_first_linear():
    a = analyse(cnnspec.get("vgg16"))
    assert a.layer("classifier.0").flatten_from == (512, 7, 7)
    assert a.layer("classifier.3").flatten_from is None
    assert analyse(cnnspec.get("resnet18")).layer("fc").flatten_from is None  # 1x1 map: order is moot
    assert analyse(cnnspec.get("googlenet")).layer("aux1.fc1").flatten_from == (128, 4, 4)


def test_spec_edit_changes_one_number():
    spec = cnnspec.get("googlenet")
    edited = cnnspec.replace_at(spec, "conv1.bn", eps=1e-5)
    assert edited.node("conv1.bn").eps == 1e-5 and spec.node("conv1.bn").eps == 1e-3
    assert edited.node("conv2.bn").eps == 1e-3
    with pytest.raises(KeyError):
        cnnspec.replace_at(spec, "conv9.bn", eps=1)


def test_summary_cli_prints_the_table():
    out = subprocess.run(
        [sys.executable, "-m", "cnnspec", "summary", "vgg16", "--size", "224"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "features.28" in out and "(512, 14, 14)" in out
    assert "total params: 138,357,544" in out
    bad = subprocess.run(
        [sys.executable, "-m", "cnnspec", "summary", "lenet5", "--size", "64"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "only takes 32x32" in bad.stderr


def test_cnnspec_imports_no_framework():
    code = (
        "import sys, json, cnnspec; cnnspec.analyse(cnnspec.get('googlenet'));"
        "frameworks = ('torch', 'keras', 'tensorflow', 'jax', 'torchvision', 'numpy');"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in frameworks)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


@pytest.mark.parametrize("name", cnnspec.names())
def test_a_rewrite_visits_every_node_once_and_the_identity_rewrite_changes_nothing(name):
    """map_nodes rebuilds each container kind through one function (nodes.with_children); a kind it
    missed would keep its children out of every rewrite (dropout off for training parity, the twins)."""
    spec = cnnspec.get(name)
    seen = []
    assert cnnspec.map_nodes(spec, lambda path, node: seen.append(path) or node) == spec
    assert seen and sorted(seen) == sorted(path for path, _ in spec.walk())
