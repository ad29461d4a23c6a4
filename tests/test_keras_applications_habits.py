"""keras.applications' constructors, called as Keras users call them, beside keras.applications:
``VGG16(include_top=False, weights=None, input_shape=..., pooling="avg", name="backbone")``, the
same parameters in the same order with the same defaults (``weights="imagenet"``), positional
arguments, and the lowercase torchvision-style names taking them too (``lenet5(False)``)."""

from __future__ import annotations

import importlib
import inspect
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import cnnspec
import keras_impl
from keras_impl.naming import constructor_name

ANCHORED = ["VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "MobileNetV2", "EfficientNetB0"]


def parameters(fn) -> list[tuple[str, object]]:
    """The parameters a Keras user passes by position or by keyword, with their defaults."""
    return [(p.name, p.default) for p in inspect.signature(fn).parameters.values() if p.kind != p.KEYWORD_ONLY]


@pytest.mark.parametrize("public", ANCHORED)
def test_the_signature_is_keras_applications(public):
    ours, theirs = getattr(keras_impl, public), getattr(keras.applications, public)
    assert parameters(ours) == parameters(theirs)
    # then the spec's options, keyword-only, as the README says
    spec_options = [p for p in inspect.signature(ours).parameters.values() if p.kind == p.KEYWORD_ONLY]
    expected = set(cnnspec.options(keras_impl.constructors()[public])) - {"num_classes"}
    assert {p.name for p in spec_options} == expected | {"features_only", "out_indices"}  # timm's, as on torch


def test_spec_options_are_typed_keywords():
    params = inspect.signature(keras_impl.googlenet).parameters
    assert params["dropout"].kind == inspect.Parameter.KEYWORD_ONLY and params["dropout"].annotation in (float, "float")
    assert params["aux_logits"].default is False  # a functional model's outputs are fixed: aux heads when asked
    assert len(keras_impl.googlenet(weights=None, input_shape=(64, 64, 3)).outputs) == 1
    assert len(keras_impl.googlenet(weights=None, input_shape=(64, 64, 3), aux_logits=True).outputs) == 3


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
    with pytest.raises(TypeError, match=r"VGG16 does not accept \['weight'\]; its parameters are \['include_top'"):
        keras_impl.VGG16(weight=None)


def test_too_many_positional_arguments_are_refused():
    with pytest.raises(TypeError, match="too many positional arguments"):
        keras_impl.ResNet18(True, None, None, None, None, 1000, "softmax", "r", "extra")


def test_another_width_is_refused():
    with pytest.raises(ValueError, match=r"MobileNetV2 is torchvision's width, alpha=1.0; received alpha=0.5"):
        keras_impl.MobileNetV2(alpha=0.5, weights=None)


# ----------------------------------------------------------------------------- decode_predictions
CLASS_INDEX = Path(cnnspec.__file__).with_name("data") / "imagenet1k_class_index.json"


def keras_own_decode(tmp_path: Path, monkeypatch, index_file: Path):
    """keras.applications' decode_predictions reading ``index_file`` as its pre-filled cache: it
    checks the file against its own md5 and downloads on a mismatch, which this test refuses."""
    from keras.src.applications import imagenet_utils
    from keras.src.backend import config
    from keras.src.utils import file_utils

    (tmp_path / "models").mkdir(parents=True)
    shutil.copy(index_file, tmp_path / "models" / "imagenet_class_index.json")
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)

    def no_download(url, *args, **kwargs):
        raise OSError(f"the test refuses a download of {url}")

    monkeypatch.setattr(file_utils, "urlretrieve", no_download)
    return keras.applications.imagenet_utils.decode_predictions


def test_decode_predictions_is_keras_applications(tmp_path, monkeypatch):
    preds = np.random.default_rng(0).dirichlet(np.ones(1000), size=3).astype("float32")
    preds[2, [7, 9]] = preds[2].max() + 0.1  # a tie, ordered as Keras orders it
    theirs = keras_own_decode(tmp_path, monkeypatch, CLASS_INDEX)(preds, top=5)
    ours = keras_impl.decode_predictions(preds, top=5)
    assert ours == theirs and ours[0][0][0].startswith("n") and len(ours[0]) == 5
    assert keras_impl.decode_predictions(keras.ops.convert_to_tensor(preds), top=1) == [r[:1] for r in theirs]


def test_a_changed_class_index_fails_keras_own_check(tmp_path, monkeypatch):
    """The twin: one name changed in the shipped file and Keras' md5 refuses it (then asks for a download)."""
    changed = tmp_path / "changed.json"
    changed.write_text(CLASS_INDEX.read_text().replace('"goldfish"', '"gold_fish"'))
    decode = keras_own_decode(tmp_path / "home", monkeypatch, changed)
    with pytest.raises(Exception, match="refuses a download"):
        decode(np.zeros((1, 1000), "float32"))


@pytest.mark.parametrize("module", ["vgg16", "vgg19", "resnet", "resnet50", "mobilenet_v2", "efficientnet"])
def test_per_model_modules_as_keras_applications(module):
    """``from keras.applications.vgg16 import VGG16, preprocess_input, decode_predictions``, ours."""
    ours, theirs = importlib.import_module(f"keras_impl.applications.{module}"), getattr(keras.applications, module)
    shared = {name for name in dir(theirs) if not name.startswith("_")} & set(keras_impl.constructors())
    assert shared and shared <= set(ours.__all__)
    for name in ("preprocess_input", "decode_predictions"):
        assert list(inspect.signature(getattr(ours, name)).parameters)[:2] == list(
            inspect.signature(getattr(theirs, name)).parameters
        )
    pixels = np.full((1, 4, 4, 3), 255.0, "float32")
    assert np.allclose(ours.preprocess_input(pixels), (1 - np.array(cnnspec.IMAGENET_MEAN)) / cnnspec.IMAGENET_STD)


def test_every_model_is_in_its_family_module():
    """One module per spec family (``keras_impl.applications.resnet``), every registered model in it."""
    for name in cnnspec.names():
        family = cnnspec.registry.builder(name).__module__.rsplit(".", 1)[-1]
        module = importlib.import_module(f"keras_impl.applications.{family}")
        assert getattr(module, constructor_name(name)) is getattr(keras_impl, constructor_name(name)), name


def test_keras_applications_module_names_are_here():
    """Where keras.applications names a module after a model (``vgg16``) or family (``resnet``), so do we."""
    theirs = {name for name in dir(keras.applications) if inspect.ismodule(getattr(keras.applications, name))}
    ours = {p.stem for p in Path(keras_impl.__file__).with_name("applications").glob("[!_]*.py")}
    families = {cnnspec.registry.builder(n).__module__.rsplit(".", 1)[-1] for n in cnnspec.names()}
    expected = theirs & ({*cnnspec.names(), *families} | {"imagenet_utils"})
    # keras.applications.mobilenet holds MobileNet (v1); ours is torchvision's family module, MobileNetV2
    keras_named = {"vgg16", "vgg19", "resnet", "resnet50", "mobilenet", "mobilenet_v2", "efficientnet"}
    assert expected == {*keras_named, "imagenet_utils"}
    assert expected <= ours
