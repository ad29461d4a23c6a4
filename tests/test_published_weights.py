"""Adding a model with published weights is one file: a spec file written into tmp_path (a tiny
model, its ``@register`` builder and one keyword entry whose URL is a local ``file://``) is imported,
and the registry, ``cnnspec.published_weights``, torch_impl's download and option rule, parity's
conversion record and keras_impl's loader all see it; nothing else is edited. Its twins: an entry
for an unregistered model, a positional entry, and an entry that is not one are refused with one
clear line. The registries are restored after each test (monkeypatch on their dicts)."""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import cnnspec  # noqa: E402
import keras_impl  # noqa: E402
import torch_impl  # noqa: E402
from cnnspec import published, registry  # noqa: E402

NAME = "tiny_published"

SPEC_FILE = '''
"""A test-only family: one model and its published weights, in one file."""

from cnnspec.model import ModelSpec
from cnnspec.nodes import AdaptiveAvgPool, Conv, Dropout, Flatten, Linear, ReLU, Sequential
from cnnspec.published import EvalTransform, PublishedWeights, register_weights
from cnnspec.registry import register


@register("{name}")
def tiny(num_classes: int = 3, dropout: float = 0.5) -> ModelSpec:
    """A conv, a pool and a classifier."""
    classifier = Sequential(name="classifier", children=(Dropout(p=dropout), Linear(out=num_classes)))
    return ModelSpec(
        name="{name}",
        family="tiny",
        paper="-",
        input_size=(3, 16, 16),
        features=(Sequential(name="features", children=(Conv(out=4, kernel=3, padding=1), ReLU())),),
        head=(AdaptiveAvgPool(name="avgpool", output=1), Flatten(name="flatten"), classifier),
        classifier="classifier.1",
        num_classes=num_classes,
    )


register_weights(
    PublishedWeights(
        model="{model}",
        name="TEST_V1",
        url="{url}",
        transforms=EvalTransform(resize_size=16, crop_size=16),
        acc1=50.0,
        acc5=90.0,
        num_params=127,
        gflops=0.0,
        file_size_mb=0.001,
        min_size=(1, 1),
        recipe="-",
        docs="Random weights for a test.",
        num_classes=3,
        options=(("dropout", 0.0),),
    )
)
'''


@pytest.fixture
def registries(monkeypatch, tmp_path):
    """Copies of the registry dicts (restored by monkeypatch), TORCH_HOME/KERAS_HOME in tmp_path."""
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    for table in ("_ENTRIES", "_DEFAULTS", "_NO_WEIGHTS"):
        monkeypatch.setattr(published, table, {k: v for k, v in getattr(published, table).items()})
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(published.MIRROR_ENV, raising=False)
    yield
    # monkeypatch restores the dicts after this fixture: checked in test_the_registries_are_restored


def _weights_file(folder: Path) -> tuple[Path, dict]:
    """Random weights for the tiny model, saved under a name carrying their sha256 prefix."""
    g = torch.Generator().manual_seed(0)
    state = {
        "features.0.weight": torch.randn(4, 3, 3, 3, generator=g),
        "features.0.bias": torch.randn(4, generator=g),
        "classifier.1.weight": torch.randn(3, 4, generator=g),
        "classifier.1.bias": torch.randn(3, generator=g),
    }
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tiny.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]
    return tmp.rename(folder / f"{NAME}-{digest}.pth"), state


def _import_spec_file(path: Path, text: str) -> ModuleType:
    """Imports a spec file the way cnnspec.models imports its own (registering what it declares)."""
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"_test_spec_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _add_the_model(tmp_path: Path, model: str = NAME) -> tuple[Path, dict]:
    weights, state = _weights_file(tmp_path / "www")
    _import_spec_file(tmp_path / "tiny.py", SPEC_FILE.format(name=NAME, model=model, url=weights.as_uri()))
    return weights, state


def test_adding_a_model_with_published_weights_is_one_file(registries, tmp_path):
    weights, state = _add_the_model(tmp_path)

    # the registry and the published weights
    assert NAME in cnnspec.names() and published.models_with_weights()[-1] == NAME
    entry = cnnspec.published_weights(NAME)
    assert entry is cnnspec.published_weights(NAME, "TEST_V1") is cnnspec.published_weights(NAME, "imagenet")
    assert cnnspec.weights_names(NAME) == ["TEST_V1"] and entry.sha256_prefix == weights.stem.rsplit("-", 1)[1]
    assert published.fixed_options(entry, {}) == {"num_classes": 3, "dropout": 0.0}
    assert published.finetune_model_options(NAME, "TEST_V1") == {"dropout": 0.0}  # the head is replaced
    assert any(row["model"] == NAME for row in published.table_rows())

    # torch: the rule fixes the options, the file is downloaded (hash-checked) and loaded
    with pytest.raises(ValueError, match=rf"weights {NAME}/TEST_V1 have 3 classes, received num_classes=5"):
        torch_impl.get_model(NAME, weights="TEST_V1", num_classes=5)
    model = torch_impl.get_model(NAME, weights="DEFAULT")
    assert model.spec.node("classifier.0").p == 0.0  # the entry's option
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert torch_impl.get_weights(NAME).meta["num_params"] == 127

    # parity converts it (writing the ConversionRecord) and keras_impl loads it (reading it)
    from keras_impl import pretrained as keras_pretrained
    from parity.fetch import convert_to_keras

    record = convert_to_keras(entry, weights)
    assert isinstance(record, published.ConversionRecord)
    assert keras_pretrained.read_record(entry) == record and record.probe["max_rel"] <= 1e-5
    with pytest.raises(ValueError, match=r"with include_top=True, classes must be 3"):
        keras_impl.get_model(NAME, weights="TEST_V1", classes=5)
    keras_model = keras_impl.get_model(NAME, weights="TEST_V1", classifier_activation=None)
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(np.asarray(keras_model(x.transpose(0, 2, 3, 1))), expected, rtol=1e-5, atol=1e-5)


def test_the_registries_are_restored():
    """After the test above (in this file's order), the model and its weights are gone."""
    assert NAME not in cnnspec.names() and NAME not in published.models_with_weights()


def test_a_feature_only_entry_warns_once_in_both_frameworks(registries, tmp_path):
    weights, _ = _add_the_model(tmp_path)
    base = cnnspec.published_weights(NAME)
    fields = {k: getattr(base, k) for k in ("url", "acc1", "acc5", "num_params", "gflops", "file_size_mb")}
    features = published.register_weights(
        published.PublishedWeights(
            model=NAME,
            name="TEST_FEATURES",
            **fields,
            min_size=(1, 1),
            recipe="-",
            docs="-",
            categories=None,
            features_only=True,
        )
    )
    assert published.fixed_options(features, {"num_classes": 7}) == {"num_classes": 7}  # its head is not used
    for build in (
        lambda: torch_impl.get_model(NAME, weights="TEST_FEATURES"),
        lambda: published.warn_unusable_head(features, {}, head=True),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            build()
        assert [str(w.message).split(":")[0] for w in caught] == [f"{NAME}/TEST_FEATURES are feature-only weights"]
    with warnings.catch_warnings(record=True) as caught:  # Keras without the head: nothing to warn about
        warnings.simplefilter("always")
        published.warn_unusable_head(features, {}, head=False)
    assert caught == []
    with pytest.raises(ValueError, match="feature-only weights have no categories; write categories=None"):
        published.PublishedWeights(
            model=NAME, name="X", **fields, min_size=(1, 1), recipe="-", docs="-", features_only=True
        )


# the twins: what is not one well-formed entry of a registered model is refused with one line


def test_an_entry_for_an_unregistered_model_is_refused_with_one_line(registries, tmp_path):
    with pytest.raises(KeyError) as err:
        _add_the_model(tmp_path, model=NAME + "s")
    assert str(err.value).count("\n") == 0 and f"unknown model '{NAME}s'" in str(err.value)
    assert f"did you mean '{NAME}'" in str(err.value)
    assert NAME + "s" not in published.models_with_weights()


def test_a_positional_entry_is_refused_with_one_line(registries, tmp_path):
    weights, _ = _weights_file(tmp_path / "www")
    positional = SPEC_FILE.replace(
        'PublishedWeights(\n        model="{model}",\n        name="TEST_V1",\n        url="{url}",',
        'PublishedWeights(\n        "{model}",\n        "TEST_V1",\n        "{url}",',
    )
    assert positional != SPEC_FILE
    with pytest.raises(TypeError, match=r"positional argument") as err:
        _import_spec_file(tmp_path / "tiny.py", positional.format(name=NAME, model=NAME, url=weights.as_uri()))
    assert str(err.value).count("\n") == 0
    assert NAME not in published.models_with_weights()
    row = (NAME, "TEST_V1", weights.as_uri(), 50.0, 90.0, 127, 0.0, 0.001, (1, 1), "-", "-")  # the old tuple rows
    with pytest.raises(TypeError, match=r"^register_weights takes a PublishedWeights\(model=\.\.\., .*received tuple$"):
        published.register_weights(row)


def test_an_entry_without_a_hash_or_with_an_unknown_option_is_refused(registries, tmp_path):
    _add_the_model(tmp_path)
    base = cnnspec.published_weights(NAME)
    fields = {k: getattr(base, k) for k in ("acc1", "acc5", "num_params", "gflops", "file_size_mb", "min_size")}
    common = {"model": NAME, "recipe": "-", "docs": "-", **fields}
    with pytest.raises(ValueError, match=r"^'tiny.pth' carries no sha256 prefix$"):
        published.register_weights(published.PublishedWeights(name="NOHASH", url="file:///x/tiny.pth", **common))
    with pytest.raises(ValueError, match=rf"^{NAME}/OPT fixes options \['width'\] that {NAME} does not take$"):
        published.register_weights(
            published.PublishedWeights(name="OPT", url=base.url, options=(("width", 2),), **common)
        )
    with pytest.raises(ValueError, match=rf"^{NAME}/TEST_V1 is already registered$"):
        published.register_weights(base)
    assert cnnspec.weights_names(NAME) == ["TEST_V1"]
