"""keras.applications' constructors, called as Keras users call them, beside keras.applications:
``VGG16(include_top=False, weights=None, input_shape=..., pooling="avg", name="backbone")``, the
same parameters in the same order with the same defaults (``weights="imagenet"``), positional
arguments, and the lowercase torchvision-style names taking them too (``lenet5(False)``)."""

from __future__ import annotations

import inspect

import keras
import pytest

import keras_impl
from keras_impl.naming import constructor_name

ANCHORED = ["VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "MobileNetV2", "EfficientNetB0"]


def parameters(fn) -> list[tuple[str, object]]:
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_KEYWORD]


@pytest.mark.parametrize("public", ANCHORED)
def test_the_signature_is_keras_applications(public):
    ours, theirs = getattr(keras_impl, public), getattr(keras.applications, public)
    assert parameters(ours) == parameters(theirs)
    assert list(inspect.signature(ours).parameters)[-1] == "options"  # the spec's options, as the README says


def test_a_backbone_as_every_keras_tutorial_builds_it():
    ours = keras_impl.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3), pooling="avg", name="backbone")
    theirs = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(64, 64, 3), pooling="avg", name="backbone"
    )
    assert ours.name == theirs.name == "backbone"
    assert ours.output_shape == theirs.output_shape == (None, 512)
    assert ours.count_params() == theirs.count_params()


def test_positional_arguments_in_keras_order():
    model = keras_impl.MobileNetV2((32, 32, 3), 1.0, True, None, classes=10)  # input_shape first, as Keras'
    assert model.output_shape == (None, 10)
    assert keras_impl.lenet5(False).output_shape[-1] == 120  # include_top=False
    assert keras_impl.lenet5(name="x").name == "x"
    assert keras_impl.ResNet18(False, None, None, (32, 32, 3), "max").output_shape == (None, 512)


def test_capitals_default_to_imagenet_and_lowercase_to_none():
    assert inspect.signature(keras_impl.VGG16).parameters["weights"].default == "imagenet"
    assert inspect.signature(keras_impl.AlexNet).parameters["weights"].default == "imagenet"
    assert inspect.signature(keras_impl.vgg16).parameters["weights"].default is None
    assert inspect.signature(keras_impl.LeNet5).parameters["weights"].default is None  # nothing published


@pytest.mark.parametrize(
    "name, public",
    [
        ("vgg16", "VGG16"),
        ("vgg16_bn", "VGG16BN"),
        ("resnet18", "ResNet18"),
        ("mobilenet_v2", "MobileNetV2"),
        ("efficientnet_b0", "EfficientNetB0"),
        ("googlenet", "GoogLeNet"),
        ("alexnet_original", "AlexNetOriginal"),
        ("lenet5", "LeNet5"),
        ("vit_b_16", "ViTB16"),
    ],
)
def test_one_naming_rule(name, public):
    assert constructor_name(name) == public and callable(getattr(keras_impl, public))


# the twins: a wrong call is one clear line, as a user's typo should be


def test_a_misspelt_keyword_is_refused():
    with pytest.raises(TypeError, match=r"vgg16 does not accept \['weight'\]"):
        keras_impl.VGG16(weight=None)


def test_too_many_positional_arguments_are_refused():
    with pytest.raises(TypeError, match="too many positional arguments"):
        keras_impl.ResNet18(True, None, None, None, None, 1000, "softmax", "r", "extra")


def test_another_width_is_refused():
    with pytest.raises(ValueError, match=r"MobileNetV2 is torchvision's width, alpha=1.0; received alpha=0.5"):
        keras_impl.MobileNetV2(alpha=0.5, weights=None)
