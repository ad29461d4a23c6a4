"""Feature pyramids and features by name (issue 31), written the way torchvision's and timm's users
write them: ``create_feature_extractor`` / ``get_graph_node_names`` on every model,
``get_model(name, features_only=True, out_indices=...)`` with timm's ``feature_info``, and
``torch_impl.feature_extractor(model, names)``; each compared with forward hooks on the same
modules (BatchNorm with random running statistics) or with timm itself, each check with a twin."""

from __future__ import annotations

import copy
import dataclasses
import functools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from feature_models import FAMILIES, small_vit_spec  # noqa: E402
from torch_helpers import randomise  # noqa: E402
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names  # noqa: E402

import cnnspec  # noqa: E402
import torch_impl  # noqa: E402

# torchvision's own note on a model whose training graph has more nodes (GoogLeNet's aux heads), as for its googlenet
AUX_NOTE = "ignore:NOTE. The nodes obtained by tracing the model in eval mode are a subsequence:UserWarning"
# timm's names for ours, and timm's feature_info (timm 1.0: create_model(name, features_only=True).feature_info)
TIMM = {
    "resnet50": "resnet50",
    "mobilenet_v2": "mobilenetv2_100",
    "efficientnet_b0": "efficientnet_b0",
    "vgg16": "vgg16",
}
TIMM_LEVELS = {  # channels, reductions: what the test against timm asserts where timm is installed
    "resnet50": ([64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32]),
    "mobilenet_v2": ([16, 24, 32, 96, 320], [2, 4, 8, 16, 32]),
    "efficientnet_b0": ([16, 24, 40, 112, 320], [2, 4, 8, 16, 32]),
    "vgg16": ([64, 128, 256, 512, 512, 512], [1, 2, 4, 8, 16, 32]),
}


@functools.cache
def model_of(name: str) -> torch_impl.SpecModel:
    """A model in eval mode with random weights and BatchNorm statistics (built once: no test changes it)."""
    model = torch_impl.SpecModel(small_vit_spec()) if name == "small_vit" else torch_impl.get_model(name)
    return randomise(model).eval()


def inputs(model, side: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, model.spec.input_size[0], side, side, generator=g)


def hooked(model, names, x) -> dict[str, torch.Tensor]:
    """What forward hooks on ``names`` see (cloned: a later in-place activation cannot overwrite them)."""
    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.clone())) for n in names
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def as_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """timm's ViT feature map: the patch tokens (class token dropped) as (N, D, rows, cols)."""
    n, _, d = tokens.shape
    return tokens[:, 1:].reshape(n, *grid, d).permute(0, 3, 1, 2)


def levels_equal_hooks(features, model, x) -> bool:
    """A features-only model's maps equal, level by level, what hooks on the full model see."""
    levels = features.feature_info.selected
    seen = hooked(model, [level.module for level in levels], x)
    with torch.no_grad():
        maps = features(x)
    want = [as_map(seen[lv.module], lv.grid) if lv.tokens else seen[lv.module] for lv in levels]
    return len(maps) == len(want) and all(torch.equal(a, b) for a, b in zip(maps, want))


def same_levels(info, timm_info) -> bool:
    return info.channels() == timm_info.channels() and info.reduction() == timm_info.reduction()


# ----------------------------------------------------------------------------- torchvision's calls


@pytest.mark.filterwarnings(AUX_NOTE)
@pytest.mark.parametrize("name", cnnspec.names())
def test_every_model_traces_for_torchvisions_feature_extraction(name):
    """get_graph_node_names and create_feature_extractor on every registered model (built on the
    meta device: tracing needs no numbers), asking for each feature level's module."""
    with torch.device("meta"):
        model = torch_impl.get_model(name, init_weights=False)
    train_nodes, eval_nodes = get_graph_node_names(model)
    assert train_nodes[0] == "x" and eval_nodes[-1] == model.spec.classifier and set(eval_nodes) <= set(train_nodes)
    modules = model.feature_info.module_name()
    extractor = create_feature_extractor(model, return_nodes={m: f"c{i}" for i, m in enumerate(modules)})
    assert list(extractor.eval().graph.find_nodes(op="output")[0].args[0]) == [f"c{i}" for i in range(len(modules))]


@pytest.mark.filterwarnings(AUX_NOTE)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_create_feature_extractor_equals_forward_hooks(name):
    model = model_of(name)
    x = inputs(model, FAMILIES[name])
    nodes = model.feature_info.module_name() + [model.spec.classifier]
    extractor = create_feature_extractor(model, return_nodes={n: f"out{i}" for i, n in enumerate(nodes)})
    with torch.no_grad():
        got = extractor(x)
        logits = model(x)
    seen = hooked(model, nodes, x)
    assert [got[f"out{i}"].shape for i in range(len(nodes))] == [seen[n].shape for n in nodes]
    assert all(torch.equal(got[f"out{i}"], seen[n]) for i, n in enumerate(nodes))
    assert torch.equal(got[f"out{len(nodes) - 1}"], logits)


def test_the_eager_input_check_stays():
    """Tracing skips the input check; a real call still gets its one clear error."""
    model = torch_impl.resnet18()
    with pytest.raises(ValueError, match=r"resnet18 expects input of shape \(N, 3, H, W\), received \(1, 4, 64, 64\)"):
        model(torch.randn(1, 4, 64, 64))
    with pytest.raises(TypeError, match="expects a torch.Tensor"):
        model([1.0])


# ----------------------------------------------------------------------------- timm's feature_info


@pytest.mark.parametrize("name", list(TIMM))
def test_feature_info_equals_timms(name):
    timm = pytest.importorskip("timm")
    with torch.device("meta"):  # feature_info needs no numbers
        theirs = timm.create_model(TIMM[name], features_only=True, pretrained=False).feature_info
        picked = timm.create_model(TIMM[name], features_only=True, out_indices=(1, -1), pretrained=False).feature_info
        ours = torch_impl.get_model(name, features_only=True, init_weights=False).feature_info
        ours_picked = torch_impl.get_model(name, features_only=True, out_indices=(1, -1), init_weights=False)
    assert same_levels(ours, theirs) and len(ours) == len(theirs)
    assert (ours.channels(), ours.reduction()) == TIMM_LEVELS[name]
    assert same_levels(cnnspec.feature_info(cnnspec.get(name)), theirs)  # the framework-free answer
    assert [ours[i]["num_chs"] for i in range(len(ours))] == [theirs[i]["num_chs"] for i in range(len(theirs))]
    assert same_levels(ours_picked.feature_info, picked) and ours_picked.feature_info.out_indices == (1, len(ours) - 1)


def test_feature_info_without_timm_installed():
    """The same figures where timm is not installed (the test above compares them with timm)."""
    for name, levels in TIMM_LEVELS.items():
        info = cnnspec.feature_info(cnnspec.get(name))
        assert (info.channels(), info.reduction()) == levels
    assert cnnspec.feature_info(cnnspec.get("resnet50")).module_name() == [
        "relu",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    assert cnnspec.feature_info(cnnspec.get("vgg16")).module_name()[-1] == "features.30"  # timm's VGG names too


def test_twin_swapped_stages_or_levels_fail_the_timm_comparison():
    """A spec whose stages 1 and 2 are listed swapped, and a feature_info with two levels swapped,
    both fail the comparison the test above makes."""
    timm_like = cnnspec.feature_info(cnnspec.get("resnet50"))
    spec = cnnspec.get("resnet50")
    stages = list(spec.stages)
    stages[1], stages[2] = stages[2], stages[1]
    swapped_spec = dataclasses.replace(spec, stages=tuple(stages))
    assert not same_levels(cnnspec.feature_info(swapped_spec), timm_like)
    levels = list(timm_like.levels)
    levels[1], levels[2] = levels[2], levels[1]
    assert not same_levels(cnnspec.FeatureInfo(levels), timm_like)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_maps_have_the_shapes_feature_info_gives(name):
    model = model_of(name)
    side = FAMILIES[name]
    features = torch_impl.features_only(model)
    with torch.no_grad():
        maps = features(inputs(model, side))
    info = features.feature_info
    shapes = cnnspec.analyse(model.spec, (side, side), include_aux=False).by_path()
    assert [m.shape[1] for m in maps] == info.channels() and all(m.ndim == 4 for m in maps)
    for level, m in zip(info.selected, maps):
        grid = level.grid if level.tokens else shapes[level.module].output_shape[1:]
        assert tuple(m.shape[2:]) == tuple(grid)
        if name not in ("alexnet", "lenet5"):  # padded convs: the map is the input over its reduction
            assert tuple(m.shape[2:]) == (side // level.reduction, side // level.reduction)
    assert levels_equal_hooks(features, model, inputs(model, side, seed=1))


def test_rule_answers_for_the_other_families():
    got = {
        name: (info.channels(), info.reduction(), info.module_name())
        for name in ("lenet5", "alexnet", "googlenet", "vit_b_16")
        for info in [cnnspec.feature_info(cnnspec.get(name))]
    }
    assert got["lenet5"] == ([6, 16, 120], [1, 2, 4], ["features.1", "features.4", "features.7"])
    assert got["alexnet"] == (
        [64, 192, 256, 256],
        [4, 8, 16, 32],
        ["features.1", "features.4", "features.11", "features.12"],
    )
    assert got["googlenet"] == (
        [64, 192, 480, 832, 1024],
        [2, 4, 8, 16, 32],
        ["conv1", "conv3", "inception3b", "inception4e", "inception5b"],
    )
    assert got["vit_b_16"] == ([768] * 12, [16] * 12, [f"encoder.layers.encoder_layer_{i}" for i in range(12)])
    # transform_input rescales the image itself: not a level
    assert cnnspec.feature_info(cnnspec.get("googlenet", transform_input=True)).module_name()[0] == "conv1"


def test_every_spec_has_a_pyramid_its_analysis_agrees_with():
    for name in cnnspec.names():
        spec = cnnspec.get(name)
        levels = cnnspec.feature_levels(spec)
        shapes = cnnspec.analyse(spec, include_aux=False).by_path()
        assert levels and [lv.index for lv in levels] == list(range(len(levels)))
        assert all(a.reduction <= b.reduction for a, b in zip(levels, levels[1:])), name
        assert all(shapes[lv.module].output_shape[-1 if lv.tokens else 0] == lv.num_chs for lv in levels), name


def test_vit_levels_are_the_blocks_tokens_on_the_patch_grid():
    model = model_of("small_vit")
    features = torch_impl.features_only(model)
    assert features.feature_info.module_name() == ["encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1"]
    assert features.feature_info.reduction() == [8, 8]
    x = inputs(model, 32)
    assert levels_equal_hooks(features, model, x)
    # the twin: the last token dropped instead of the class token gives other maps
    seen = hooked(model, ["encoder.layers.encoder_layer_1"], x)["encoder.layers.encoder_layer_1"]
    wrong = seen[:, :-1].reshape(2, 4, 4, 64).permute(0, 3, 1, 2)
    with torch.no_grad():
        assert not torch.equal(features(x)[1], wrong)


# ----------------------------------------------------------------------------- timm's features_only


def test_features_only_with_a_local_checkpoint_equals_the_full_models_hooks(tmp_path):
    path = tmp_path / "resnet18-random.pth"
    torch.save(randomise(torch_impl.resnet18(), seed=3).state_dict(), path)
    features = torch_impl.resnet18(weights=str(path), features_only=True, out_indices=(1, 2, 3)).eval()
    full = torch_impl.resnet18(weights=str(path)).eval()
    assert features.feature_info.channels() == [64, 128, 256] and features.feature_info.out_indices == (1, 2, 3)
    assert not any(key.startswith(("layer4", "fc")) for key in features.state_dict())  # the rest is cut away
    assert set(features.state_dict()) < set(full.state_dict())
    x = inputs(full, 64)
    assert levels_equal_hooks(features, full, x)
    # the twin: one BatchNorm statistic changed in the full model breaks the equality
    with torch.no_grad():
        full.layer2[0].bn1.running_var[0] *= 2.0
    assert not levels_equal_hooks(features, full, x)


def test_get_model_and_the_factories_take_the_same_keywords():
    a = torch_impl.get_model("mobilenet_v2", features_only=True, out_indices=(-2, -1))
    b = torch_impl.mobilenet_v2(features_only=True, out_indices=2)  # timm: an int n is the last n levels
    assert a.feature_info.channels() == b.feature_info.channels() == [96, 320]
    assert a.feature_info.module_name() == ["features.13", "features.17"] and len(a.feature_info) == 5
    with torch.no_grad():
        assert [tuple(m.shape) for m in b.eval()(torch.randn(1, 3, 64, 64))] == [(1, 96, 4, 4), (1, 320, 2, 2)]


def test_training_mode_runs_the_training_graph():
    """The features-only model switches graphs with train()/eval() as the model does: in training,
    EfficientNet's stochastic depth drops rows exactly as the full model does on the same seed."""
    model = randomise(torch_impl.efficientnet_b0(stochastic_depth_prob=0.5))
    features = torch_impl.features_only(model, out_indices=(-1,)).train()
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(0)
    trained = features(x)[0]
    torch.manual_seed(0)
    model.train()
    seen = {}
    handle = model.features[7].register_forward_hook(lambda m, i, o: seen.setdefault("out", o.detach().clone()))
    model(x)
    handle.remove()
    assert torch.equal(trained.detach(), seen["out"])
    features.eval()
    with torch.no_grad():
        assert not torch.equal(features(x)[0], seen["out"]) and torch.equal(features(x)[0], features(x)[0])


def test_features_only_exports_and_copies():
    features = torch_impl.resnet18(features_only=True, out_indices=(2, 3)).eval()
    x = torch.randn(2, 3, 64, 64)
    exported = torch.export.export(features, (x,))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(exported.module()(x), features(x)))
    copied = copy.deepcopy(features)
    assert copied.feature_info.channels() == [128, 256] and copied.spec.name == "resnet18"


def test_full_models_offer_timms_feature_info_too():
    model = torch_impl.resnet50()
    assert model.feature_info.channels() == [64, 256, 512, 1024, 2048]
    assert [fi["module"] for fi in model.feature_info] == model.feature_info.module_name()


@pytest.mark.parametrize("bad", [(5,), (-6,), (0, 9), 0, 6, (), "layer1", (1.0,)])
def test_a_bad_out_indices_is_one_line_naming_the_range(bad):
    with pytest.raises(
        ValueError, match=r"resnet18 has 5 feature levels: out_indices takes indices from -5 to 4"
    ) as err:
        torch_impl.resnet18(features_only=True, out_indices=bad)
    assert "\n" not in str(err.value)


def test_out_indices_without_features_only_is_an_error():
    with pytest.raises(ValueError, match="pass features_only=True"):
        torch_impl.get_model("resnet18", out_indices=(1, 2))


# ----------------------------------------------------------------------------- features by name


def test_feature_extractor_returns_named_maps_equal_to_hooks():
    model = model_of("resnet18")
    names = ["layer2.1", "conv1", "layer1.0.bn2", "layer3"]
    maps = torch_impl.feature_extractor(model, names)(inputs(model, 64))
    assert list(maps) == names  # in the order given
    seen = hooked(model, names, inputs(model, 64))
    assert all(torch.equal(maps[n], seen[n]) for n in names)
    # a graph node name (get_graph_node_names) works as well: the sum before the block's ReLU
    added = torch_impl.feature_extractor(model, ["layer1.0.add"])(inputs(model, 64))["layer1.0.add"]
    assert torch.equal(torch.relu(added), hooked(model, ["layer1.0"], inputs(model, 64))["layer1.0"])


def test_names_of_one_node_and_repeated_levels_each_get_their_map():
    """torchvision gives a node to one query only; "layer1" and "layer1.1" are one node's names."""
    model = model_of("resnet18")
    x = inputs(model, 64)
    maps = torch_impl.feature_extractor(model, ["layer1", "layer1.1", "layer1.1.relu"])(x)
    assert list(maps) == ["layer1", "layer1.1", "layer1.1.relu"]
    assert torch.equal(maps["layer1"], maps["layer1.1"]) and torch.equal(maps["layer1"], maps["layer1.1.relu"])
    with torch.no_grad():
        twice = torch_impl.features_only(model, out_indices=(1, 1))(x)
    assert len(twice) == 2 and torch.equal(twice[0], maps["layer1"]) and torch.equal(twice[1], maps["layer1"])


def test_feature_extractor_keeps_a_map_that_an_in_place_relu_overwrites():
    """VGG-BN's BatchNorm output feeds ReLU(inplace=True): torchvision's create_feature_extractor
    returns it overwritten by the ReLU (the twin); feature_extractor clones it where it is made."""
    model = model_of("vgg11_bn")
    x = inputs(model, 32)
    names = ["features.0", "features.1", "features.2"]
    seen = hooked(model, names, x)
    with torch.no_grad():
        ours = torch_impl.feature_extractor(model, names)(x)
        theirs = create_feature_extractor(model, return_nodes=names)(x)
    assert all(torch.equal(ours[n], seen[n]) for n in names)
    assert not torch.equal(theirs["features.1"], seen["features.1"])
    assert torch.equal(theirs["features.1"], seen["features.2"])  # the ReLU's output, not the BatchNorm's


@pytest.mark.parametrize(
    ("name", "typo", "closest"),
    [
        ("resnet50", "layr2.1", "layer2.1"),
        ("vgg16", "featurs.3", "features.3"),
        ("mobilenet_v2", "feature.17", "features.17"),
    ],
)
def test_a_misspelt_node_name_is_one_line_naming_the_closest(name, typo, closest):
    with torch.device("meta"):
        model = torch_impl.get_model(name, init_weights=False)
    with pytest.raises(ValueError, match=rf"{name} has no node '{typo}'; the closest is '{closest}'") as err:
        torch_impl.feature_extractor(model, ["layer1", typo] if name == "resnet50" else [typo])
    assert "\n" not in str(err.value)
