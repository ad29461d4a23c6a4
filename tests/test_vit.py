"""The vision transformer's conventions, each with a twin that breaks it and sees the check fail at
the right node: q/k/v packing and head order, LayerNorm eps, the class token's place, the position
embedding's layout, exact GELU, the token the head reads. A small ViT (torchvision's
VisionTransformer with the same layout) keeps them fast; vit_b_16 itself runs in test_parity."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import torch
import torchvision
from torch_helpers import max_abs_diff, randomise

import cnnspec
import keras_impl
import parity
import torch_impl
from cnnspec.models.vit import vision_transformer
from keras_impl import builder as keras_builder
from keras_impl import layer_name
from keras_impl import layers as keras_layers

SMALL = dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128, num_classes=10)
LAYER0 = "encoder.layers.encoder_layer_0"


def small_spec(**changes) -> cnnspec.ModelSpec:
    return vision_transformer("small_vit", **{**SMALL, **changes})


def inputs(batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def pair(keras_spec=None, seed=1):
    spec = small_spec()
    torch_model = parity.randomise_torch(torch_impl.SpecModel(spec), seed).eval()
    keras_model = keras_impl.build_model(keras_spec or spec, classifier_activation=None)
    parity.transfer_weights(torch_model, keras_model)
    return torch_model, keras_model


def report(torch_model, keras_model, x=None):
    return parity.compare(torch_model, keras_model, inputs() if x is None else x, layers=True)


# ------------------------------------------------------------------------------------------ passing
def test_torchvision_vision_transformer_checkpoint_loads_strictly_and_matches():
    """Same keys in the same order, random LayerNorm affine and biases, 1e-6 on the outputs."""
    tv = randomise(torchvision.models.VisionTransformer(**{k: v for k, v in SMALL.items()}), seed=3).eval()
    ours = torch_impl.SpecModel(small_spec()).eval()
    assert list(ours.state_dict()) == list(tv.state_dict())
    ours.load_state_dict(tv.state_dict(), strict=True)
    assert float(ours.encoder.layers.encoder_layer_0.ln_1.weight.detach().std()) > 0.01  # random affine, not fresh ones
    x = torch.from_numpy(inputs())
    with torch.no_grad():
        assert max_abs_diff(ours(x), tv(x)) <= 1e-6


def test_vit_b_16_has_torchvisions_keys_shapes_and_counts():
    spec = cnnspec.get("vit_b_16")
    a = cnnspec.analyse(spec)
    assert a.total_params == 86_567_656 and abs(a.total_macs / 1e9 - 17.564) / 17.564 < 0.01
    ours = torch_impl.vit_b_16()
    tv = torchvision.models.vit_b_16(weights=None)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in tv.state_dict().items()
    ]
    assert (
        cnnspec.analyse(cnnspec.get("vit_b_16", image_size=384)).total_params == 86_859_496
    )  # the SWAG E2E weights' size


def test_small_vit_agrees_per_layer_both_ways_and_names_every_node():
    torch_model, keras_model = pair()
    r = report(torch_model, keras_model)
    assert r.passed and r.output.max_rel <= 1e-5, r.first_divergence
    names = [f.name for f in r.layers]
    for path in (
        "patch_tokens",
        "class_token",
        "encoder.pos_embedding",
        f"{LAYER0}.self_attention",
        f"{LAYER0}.mlp.1",
        LAYER0,
        "encoder.ln",
        "class_token_output",
    ):
        assert path in names
    back = parity.randomise_keras(keras_impl.build_model(small_spec(), classifier_activation=None), seed=4)
    fresh = torch_impl.SpecModel(small_spec()).eval()
    parity.transfer_weights(back, fresh)
    assert parity.compare(fresh, back, inputs()).passed


def test_init_follows_torchvision_in_both_frameworks():
    torch_model = torch_impl.get_model("vit_b_16", image_size=32)
    keras_model = keras_impl.get_model("vit_b_16", input_shape=(32, 32, 3), image_size=32)
    t = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}
    k = {w.path: np.asarray(w) for w in keras_model.weights}
    assert not t["class_token"].any() and not k["class_token/class_token"].any()
    assert not t["heads.head.weight"].any() and not k["heads_head/kernel"].any()
    assert (
        0.017 < t["encoder.pos_embedding"].std() < 0.023
        and 0.017 < k["encoder_pos_embedding/pos_embedding"].std() < 0.023
    )
    qkv = t[f"{LAYER0}.self_attention.in_proj_weight"].std()
    keras_q = k[f"{layer_name(LAYER0)}_self_attention/query/kernel"].std()
    assert abs(qkv - (6 / (4 * 768)) ** 0.5 / 3**0.5) < 1e-3 and abs(keras_q - qkv) < 1e-3  # uniform(+-sqrt(6 / 4D))


# ------------------------------------------------------------------------------------------ twins
@pytest.mark.parametrize("wrong", ["k, q, v", "heads last"])
def test_qkv_packing_and_head_order_are_caught_at_the_attention(wrong, monkeypatch):
    """torch's in_proj_weight rows are q, k, v; each block's outputs split into (heads, D / heads)."""
    original = parity.weights.mapping._attention_to_keras

    def broken(tensors, heads):
        out = original(tensors, heads)
        if wrong == "k, q, v":
            return out[2:4] + out[0:2] + out[4:]
        d = out[0].shape[0]
        return [
            a.reshape(a.shape[:-2] + (d // heads, heads)).swapaxes(-1, -2) if i in (0, 2, 4) else a
            for i, a in enumerate(out)
        ]

    monkeypatch.setattr(parity.weights.mapping, "_attention_to_keras", broken)
    r = report(*pair())
    assert not r.passed and r.first_divergence.name == f"{LAYER0}.self_attention"


def test_keras_default_layernorm_eps_is_caught_at_the_first_layernorm():
    """The spec says 1e-6 (torchvision's ViT); Keras' default 1e-3 would leak in without it."""
    broken = cnnspec.map_nodes(
        small_spec(), lambda p, node: replace(node, eps=1e-3) if isinstance(node, cnnspec.LayerNorm) else node
    )
    r = report(*pair(keras_spec=broken))
    assert not r.passed and r.first_divergence.name == f"{LAYER0}.ln_1"


def test_a_class_token_appended_instead_of_prepended_is_caught(monkeypatch):
    class Appended(keras_layers.ClassToken):
        def call(self, x):
            token = keras.ops.broadcast_to(self.token, (keras.ops.shape(x)[0], 1, x.shape[-1]))
            return keras.ops.concatenate([x, token], axis=1)

    monkeypatch.setitem(
        keras_builder._BUILDERS, cnnspec.ClassToken, lambda node, x, path, ctx: Appended(name=layer_name(path))(x)
    )
    r = report(*pair())
    assert not r.passed and r.first_divergence.name == "class_token"


def test_a_position_table_with_patches_column_by_column_is_caught_at_the_embedding():
    """Row i of the table belongs to token i: the class token, then the patches row by row. A
    conversion that walked the patch grid column by column diverges where the table is added."""
    torch_model, keras_model = pair()
    layer = keras_model.get_layer("encoder_pos_embedding")
    (table,) = layer.get_weights()
    side = int(round((table.shape[1] - 1) ** 0.5))
    patches = table[:, 1:].reshape(1, side, side, -1).transpose(0, 2, 1, 3).reshape(1, side * side, -1)
    layer.set_weights([np.concatenate([table[:, :1], patches], axis=1)])
    r = report(torch_model, keras_model)
    assert not r.passed and r.first_divergence.name == "encoder.pos_embedding"


def test_tanh_gelu_is_caught_at_the_mlp_activation():
    broken = cnnspec.map_nodes(
        small_spec(), lambda p, node: replace(node, approximate=True) if isinstance(node, cnnspec.GELU) else node
    )
    r = report(*pair(keras_spec=broken), x=3 * inputs())
    assert not r.passed and r.first_divergence.name == f"{LAYER0}.mlp.1"


def test_reading_the_last_token_is_caught_at_the_head():
    broken = cnnspec.map_nodes(
        small_spec(), lambda p, node: replace(node, index=-1) if isinstance(node, cnnspec.SelectToken) else node
    )
    r = report(*pair(keras_spec=broken))
    assert not r.passed and r.first_divergence.name == "class_token_output"


def test_a_wrong_input_size_gets_one_line():
    with pytest.raises(ValueError, match="only takes 224x224 inputs, received 240x240"):
        torch_impl.vit_b_16(image_size=224)(torch.zeros(1, 3, 240, 240))
    with pytest.raises(ValueError, match="multiple of the patch size 16"):
        cnnspec.get("vit_b_16", image_size=200)
    with pytest.raises(ValueError, match="only takes 32x32"):
        keras_impl.get_model("vit_b_16", image_size=32, input_shape=(64, 64, 3))


def test_both_onnx_exports_of_a_small_vit_agree_and_store_every_matrix():
    """Four ways (torch, Keras, both ONNX files in onnxruntime) on a batch of another size than the
    export's; each file stores the attention matrices and the position table (Keras' q/k/v biases
    as (heads, D / heads) tables besides)."""
    pytest.importorskip("onnxruntime")
    from parity.onnx.fourway import expected_weight_elements, onnx_check

    torch_model, keras_model = pair()
    result = onnx_check(torch_model, keras_model, inputs(batch=3))
    assert result.passed, (result.problems, [r.output for r in result.reports])
    assert (
        result.exports["keras"].exporter == "torchscript"
    )  # Keras' LayerNormalization made traceable, no slow fallback
    assert [r.output.max_rel <= 1e-5 for r in result.reports] == [True] * 3
    d, layers = SMALL["hidden_dim"], SMALL["num_layers"]
    torch_count = expected_weight_elements(small_spec())
    assert result.graphs["torch"].weight_elements == torch_count
    assert (
        result.graphs["keras"].weight_elements
        == torch_count + layers * 3 * d
        == expected_weight_elements(small_spec(), framework="keras")
    )


def test_fine_tuning_builds_a_vit_for_the_asked_size_and_published_weights_fix_theirs():
    """--size 32 from scratch sets image_size (the position embedding); SWAG E2E's file fixes 384."""
    from cnntune.policy import choose_size
    from keras_impl import finetune as keras_finetune
    from torch_impl import finetune as torch_finetune

    options = cnnspec.options_for_size("vit_b_16", 32, {})
    assert options == {"image_size": 32}
    assert choose_size(cnnspec.get("vit_b_16", **options), 32, ".") == 32
    torch_model = torch_finetune.tuning_model("vit_b_16", 3, model_options=options)
    assert tuple(torch_model.encoder.pos_embedding.shape) == (1, 5, 768) and torch_model.num_classes == 3
    keras_model = keras_finetune.tuning_model("vit_b_16", 3, size=32, model_options=options)
    assert keras_model.input_shape == (None, 32, 32, 3) and keras_model.output_shape == (None, 3)
    swag = cnnspec.published.finetune_model_options("vit_b_16", "IMAGENET1K_SWAG_E2E_V1")
    assert cnnspec.options_for_size("vit_b_16", 32, swag) == {"image_size": 384}
