"""timm's head and feature calls on torch_impl models, typed as timm users type them:
``forward_features``, ``forward_head(x, pre_logits=True)``, ``num_features``, ``get_classifier``,
``reset_classifier(n)`` (0: no classifier). Beside timm itself where it is installed."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch_impl  # noqa: E402

WIDTHS = {"resnet50": 2048, "vgg16": 4096, "mobilenet_v2": 1280, "efficientnet_b0": 1280, "googlenet": 1024}


@pytest.mark.parametrize("name", list(WIDTHS))
def test_features_head_and_pre_logits_compose_to_forward(name):
    model = torch_impl.get_model(name, num_classes=7).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        pre = model.forward_head(features, pre_logits=True)
        logits = model.forward_head(features)
        assert model.num_features == WIDTHS[name] and pre.shape == (2, model.num_features)
        assert torch.equal(model.get_classifier()(pre), logits) and torch.equal(logits, model(x))


def test_reset_classifier_as_timm_users_call_it():
    model = torch_impl.resnet18().eval()
    x = torch.randn(1, 3, 64, 64)
    model.reset_classifier(10)
    assert model.num_classes == 10 and model(x).shape == (1, 10) and model.spec.num_classes == 10
    assert model.get_classifier() is model.fc and list(model.state_dict())[-1] == "fc.bias"
    model.reset_classifier(0)  # timm: the model now returns its pre-logits features
    with torch.no_grad():
        assert model(x).shape == (1, model.num_features) and model.num_classes == 0
        assert torch.equal(model(x), model.forward_head(model.forward_features(x), pre_logits=True))


def test_reset_classifier_keeps_device_and_dtype():
    model = torch_impl.vgg11(num_classes=5).double()
    model.reset_classifier(3)
    assert model.classifier[6].weight.dtype == torch.float64 and model.classifier[6].out_features == 3


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_a_bad_class_count_is_one_clear_error(bad):
    """The twin: what timm would take silently or crash on deep inside, refused in one line."""
    with pytest.raises(ValueError, match=rf"num_classes must be an int >= 0 \(0: no classifier\), received {bad!r}"):
        torch_impl.resnet18().reset_classifier(bad)


def test_pre_logits_are_not_the_logits():
    model = torch_impl.resnet18(num_classes=10).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 64, 64))
        assert model.forward_head(features, pre_logits=True).shape != model.forward_head(features).shape


def test_beside_timm_the_same_numbers():
    timm = pytest.importorskip("timm")  # timm's ResNet has torchvision's state_dict keys
    ours = torch_impl.resnet50().eval()
    theirs = timm.create_model("resnet50", pretrained=False).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.forward_features(x), theirs.forward_features(x), atol=1e-5)
        a = ours.forward_head(ours.forward_features(x), pre_logits=True)
        assert torch.allclose(a, theirs.forward_head(theirs.forward_features(x), pre_logits=True), atol=1e-5)
    assert ours.num_features == theirs.num_features


@pytest.mark.parametrize("name", ["vgg11", "resnet18"])
def test_the_keras_pre_logits_model_computes_torchs_pre_logits(name):
    """Keras' way to timm's ``pre_logits``: ``keras_impl.surgery.features_model(model)``, the model
    up to the classifier's input; with the same weights it gives torch's numbers."""
    np = pytest.importorskip("numpy")
    import keras_impl
    import parity
    from keras_impl.surgery import features_model

    ours = torch_impl.get_model(name, num_classes=10).eval()
    twin = keras_impl.get_model(name, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    parity.transfer_weights(ours, twin)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = ours.forward_head(ours.forward_features(x), pre_logits=True).numpy()
    got = np.asarray(features_model(twin)(x.permute(0, 2, 3, 1).numpy()))
    assert got.shape == want.shape == (2, ours.num_features)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4)
    assert not np.allclose(got[:1], want[1:], rtol=1e-4, atol=1e-4)  # the twin: another image's differ
