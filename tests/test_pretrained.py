"""Published weights by name, offline: a server on 127.0.0.1 and pre-filled caches stand in for
download.pytorch.org. Nothing here reaches the internet (the mirror variable points every
download that the tests do not serve at a closed local port)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import io
import re
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
keras = pytest.importorskip("keras")

from torch_helpers import randomise  # noqa: E402

import cnnspec  # noqa: E402
import keras_impl  # noqa: E402
import torch_impl  # noqa: E402
from cnnspec import published  # noqa: E402
from keras_impl import pretrained as keras_pretrained  # noqa: E402

TV_FACTORIES = {"resnet18": torchvision.models.resnet18, "googlenet": torchvision.models.googlenet}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchvision_model(name: str, seed: int):
    """A torchvision model with every weight and BatchNorm statistic random (GoogLeNet with the aux
    heads its published file holds)."""
    extra = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
    return randomise(getattr(torchvision.models, name)(weights=None, **extra), seed)


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """TORCH_HOME and KERAS_HOME in a temp folder, torch.hub's cache pre-filled under torchvision's
    file names with random weights saved by torchvision; downloads go to a closed local port."""
    root = tmp_path_factory.mktemp("caches")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(root / "torch"))
        mp.setenv("KERAS_HOME", str(root / "keras"))
        mp.setenv(published.MIRROR_ENV, f"http://127.0.0.1:{_closed_port()}/")
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        checkpoints.mkdir(parents=True)
        for i, name in enumerate(TV_FACTORIES):
            torch.save(
                _torchvision_model(name, seed=10 + i).state_dict(),
                checkpoints / cnnspec.published_weights(name).file_name,
            )
        yield root


def _probe(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3, 224, 224)).astype(np.float32)


def _torchvision_logits(name: str, x: np.ndarray) -> np.ndarray:
    model = TV_FACTORIES[name](weights="IMAGENET1K_V1").eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    assert np.isfinite(a).all() and np.isfinite(b).all()
    return float(np.abs(a - b).max() / np.abs(a).max())


# ----------------------------------------------------------------------------- torch side, pre-filled cache
@pytest.mark.parametrize("name", list(TV_FACTORIES))
def test_torch_impl_equals_torchvision_from_prefilled_cache(caches, name):
    x = _probe()
    ours = getattr(torch_impl, name)(weights="IMAGENET1K_V1").eval()
    with torch.no_grad():
        assert np.array_equal(ours(torch.from_numpy(x)).numpy(), _torchvision_logits(name, x))
    if name == "googlenet":  # the weights set transform_input (as torchvision does) and drop the aux heads
        assert cnnspec.get("googlenet", transform_input=True).features[0].name == ours.spec.features[0].name
        assert not any(k.startswith("aux") for k in ours.state_dict())


def test_torchvision_enum_members_and_default(caches):
    a = torch_impl.resnet18(weights=torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
    b = torch_impl.resnet18(weights="DEFAULT")
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    with pytest.raises(ValueError, match="ResNet50_Weights.IMAGENET1K_V2 are resnet50's; resnet18 takes IMAGENET1K_V1"):
        torch_impl.resnet18(weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V2)


def test_options_that_contradict_the_checkpoint_fail_before_any_download(caches):
    with pytest.raises(ValueError, match=r"have 1000 classes, received num_classes=10.*replace_head"):
        torch_impl.resnet34(weights="IMAGENET1K_V1", num_classes=10)
    with pytest.raises(
        ValueError, match=r"have 1000 classes, received classes=10: .*with include_top=True, classes must be 1000"
    ):
        keras_impl.resnet34(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="lenet5 has no published weights"):
        torch_impl.lenet5(weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="resnet34 has no published weights named 'IMAGENET1K_V2'"):
        torch_impl.resnet34(weights="IMAGENET1K_V2")
    assert not (Path(torch.hub.get_dir()) / "checkpoints" / cnnspec.published_weights("resnet34").file_name).exists()


def test_unreachable_server_is_one_clear_error(caches):
    with pytest.raises(
        OSError, match=f"could not download resnet34/IMAGENET1K_V1 from http://127.0.0.1.*{published.MIRROR_ENV}"
    ):
        torch_impl.resnet34(weights="DEFAULT")


def test_eval_transforms_equal_torchvision():
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    for tv in (torchvision.models.ResNet50_Weights.IMAGENET1K_V2, torchvision.models.VGG16_Weights.IMAGENET1K_FEATURES):
        ours = torch_impl.get_weights(tv.url.rsplit("/", 1)[-1].split("-")[0].split("_features")[0], tv.name)
        assert torch.equal(ours.transforms()(image), tv.transforms()(image))
        assert ours.meta["_metrics"] == tv.meta["_metrics"] or tv.name.endswith("FEATURES")


# ----------------------------------------------------------------------------- download from a local server
class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate = False

    def log_message(self, *args):  # keep the test output clean
        pass

    def copyfile(self, source, outputfile):
        if self.truncate:  # the full Content-Length was announced; send half, then drop the connection
            data = source.read()
            outputfile.write(data[: len(data) // 2])
            self.close_connection = True
            return
        super().copyfile(source, outputfile)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A file server on 127.0.0.1 serving ``tmp_path/www``; downloads go to it through the mirror
    variable, into a fresh torch.hub cache."""
    www = tmp_path / "www"
    www.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    handler = type("Handler", (_Handler,), {})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(published.MIRROR_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/models/")
    (www / "models").mkdir()
    state = {"www": www / "models", "handler": handler, "httpd": httpd, "entry": None}
    yield state
    httpd.shutdown()
    httpd.server_close()
    if state["entry"] is not None:
        published.unregister_weights(state["entry"])


def _serve_checkpoint(server, seed: int = 0, name: str = "resnet18"):
    """Saves a random torchvision model under a catalog entry named TEST_V1 whose file name
    carries the file's real sha256 prefix; returns (entry, state dict)."""
    model = _torchvision_model(name, seed)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    data = buffer.getvalue()
    file_name = f"{name}-test-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (server["www"] / file_name).write_bytes(data)
    entry = dataclasses.replace(
        cnnspec.published_weights(name), name="TEST_V1", url=published.TORCHVISION_BASE + file_name
    )
    server["entry"] = published.register_weights(entry)
    return entry, model.state_dict()


def _refused(entry) -> str:
    """The message (a regex) of a download whose bytes do not match the sha256 prefix in its name."""
    return (
        rf"^{re.escape(entry.download_url())} does not match its sha256 prefix {entry.sha256_prefix} "
        r"\(tampered or truncated\); "
        rf"nothing was written to {re.escape(str(Path(torch.hub.get_dir()) / 'checkpoints'))}: "
    )


def _cache_files():
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_download_is_hash_checked_cached_and_reused_offline(server):
    entry, state = _serve_checkpoint(server)
    model = torch_impl.resnet18(weights="TEST_V1")
    assert _cache_files() == [entry.file_name]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if k in model.state_dict())
    server["httpd"].shutdown()  # the server is gone: the second call uses the cache
    again = torch_impl.resnet18(weights="TEST_V1")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in model.state_dict().items())


def test_tampered_download_is_refused_and_leaves_nothing(server):
    entry, _ = _serve_checkpoint(server)
    other = io.BytesIO()
    torch.save(_torchvision_model("resnet18", seed=99).state_dict(), other)
    (server["www"] / entry.file_name).write_bytes(other.getvalue())  # same name, other bytes
    with pytest.raises(ValueError, match=_refused(entry)):
        torch_impl.resnet18(weights="TEST_V1")
    assert _cache_files() == []


def test_interrupted_download_leaves_no_partial_file(server):
    entry, _ = _serve_checkpoint(server)
    server["handler"].truncate = True
    with pytest.raises(ValueError, match=_refused(entry)):
        torch_impl.resnet18(weights="TEST_V1")
    assert _cache_files() == []


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


def test_parity_fetch_downloads_verifies_and_converts_over_the_loopback_server(server, keras_home, capsys):
    """python -m parity fetch from the mirror (a server on 127.0.0.1): the file is downloaded into
    torch.hub's cache byte for byte, hash-checked, converted for Keras and verified on the probe
    batch; the converted file loads into keras_impl and agrees with torch. mobilenet_v2: the
    smallest file in the catalog (3.5 M parameters)."""
    from parity.__main__ import main

    entry, state = _serve_checkpoint(server, name="mobilenet_v2")
    assert main(["fetch", "mobilenet_v2", "--weights", "TEST_V1", "--framework", "both", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / entry.file_name
    assert _cache_files() == [entry.file_name] and cached.read_bytes() == (server["www"] / entry.file_name).read_bytes()
    converted, record = keras_pretrained.converted_path(entry), keras_pretrained.read_record(entry)
    assert str(cached) in out and str(converted) in out
    assert record is not None and record["source_file"] == entry.file_name and record["probe"]["max_rel"] <= 1e-5
    assert sorted(p.name for p in converted.parent.iterdir()) == sorted(
        [converted.name, keras_pretrained.record_path(entry).name]
    )
    x = _probe()[:1]
    ours = torch_impl.mobilenet_v2(weights="TEST_V1").eval()
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in state.items())
    keras_model = keras_impl.mobilenet_v2(weights="TEST_V1", classifier_activation=None)
    with torch.no_grad():
        assert _rel(ours(torch.from_numpy(x)).numpy(), np.asarray(keras_model(x.transpose(0, 2, 3, 1)))) <= 1e-5


def test_parity_fetch_of_a_tampered_file_is_one_line_and_leaves_nothing(server, keras_home, capsys):
    """Twin: the server holds other bytes under the name: fetch fails with one line naming the URL
    and the hash, and neither cache holds a file."""
    from parity.__main__ import main

    entry, _ = _serve_checkpoint(server, name="mobilenet_v2")
    other = io.BytesIO()
    torch.save(_torchvision_model("mobilenet_v2", seed=99).state_dict(), other)
    (server["www"] / entry.file_name).write_bytes(other.getvalue())  # same name, other bytes
    assert main(["fetch", "mobilenet_v2", "--weights", "TEST_V1", "--framework", "both", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert re.match(r"python -m parity(?: fetch)?: error: " + _refused(entry)[1:], err), err
    assert _cache_files() == []
    assert not keras_home.exists() or not any(keras_home.rglob("*.*")), sorted(keras_home.rglob("*"))


# ----------------------------------------------------------------------------- Keras side
@pytest.mark.parametrize("name", list(TV_FACTORIES))
def test_keras_impl_agrees_with_torchvision_and_converts_once(caches, name, monkeypatch):
    x = _probe()
    reference = _torchvision_logits(name, x)
    model = getattr(keras_impl, name)(weights="imagenet", classifier_activation=None)
    assert _rel(reference, np.asarray(model(x.transpose(0, 2, 3, 1)))) <= 1e-5
    entry = cnnspec.published_weights(name)
    record = keras_pretrained.read_record(entry)
    assert record is not None and record["probe"]["max_rel"] <= 1e-5 and record["source_file"] == entry.file_name
    stamp = keras_pretrained.converted_path(entry).stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the conversion is cached")

    monkeypatch.setattr(keras_pretrained.subprocess, "run", no_conversion)
    again = getattr(keras_impl, name)(weights="IMAGENET1K_V1", classifier_activation=None)
    assert np.array_equal(np.asarray(again(x.transpose(0, 2, 3, 1))), np.asarray(model(x.transpose(0, 2, 3, 1))))
    assert keras_pretrained.converted_path(entry).stat().st_mtime_ns == stamp
    if name == "googlenet":  # twin: without the transform_input the weights set, it no longer agrees
        plain = keras_impl.googlenet(weights="imagenet", transform_input=False, classifier_activation=None)
        assert _rel(reference, np.asarray(plain(x.transpose(0, 2, 3, 1)))) > 1e-3
    else:  # any input size, no top: layers copied by name
        backbone = keras_impl.resnet18(weights="imagenet", include_top=False, pooling="avg", input_shape=(96, 96, 3))
        assert backbone.output_shape == (None, 512)
        assert np.array_equal(backbone.get_layer("conv1").get_weights()[0], model.get_layer("conv1").get_weights()[0])


def test_keras_cache_damage_is_detected(caches):
    entry = cnnspec.published_weights("resnet18")
    keras_impl.resnet18(weights="imagenet")  # converted (or already cached)
    path = keras_pretrained.converted_path(entry)
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-10])
        assert keras_pretrained.read_record(entry) is None  # would be converted again
    finally:
        path.write_bytes(original)
    assert keras_pretrained.read_record(entry) is not None


def test_keras_without_torch_names_the_command(caches, monkeypatch):
    real = keras_pretrained.importlib.util.find_spec
    monkeypatch.setattr(
        keras_pretrained.importlib.util, "find_spec", lambda n, *a: None if n == "torch" else real(n, *a)
    )
    with pytest.raises(RuntimeError, match="python -m parity fetch resnet34 --weights IMAGENET1K_V1 --framework keras"):
        keras_impl.resnet34(weights="imagenet")


def test_parity_fetch_cli_prints_where_the_files_are(caches, capsys):
    from parity.__main__ import main

    keras_impl.resnet18(weights="imagenet")  # conversion cached
    assert main(["fetch", "resnet18", "--framework", "both", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth") in out
    assert str(keras_pretrained.converted_path(cnnspec.published_weights("resnet18"))) in out
    assert main(["fetch", "lenet5"]) == 2
    assert "lenet5 has no published weights" in capsys.readouterr().err


def test_parity_check_on_published_weights(caches):
    from parity.comparison.check import check

    result = check("googlenet", weights="IMAGENET1K_V1", size=(64, 64), direction="torch2keras")
    assert result.passed, [r.to_dict() for r in result.reports]


def test_googlenet_file_with_aux_heads_loads_into_the_default_keras_model(caches, tmp_path):
    from parity.weights.convert import convert

    source = Path(torch.hub.get_dir()) / "checkpoints" / cnnspec.published_weights("googlenet").file_name
    target = convert("googlenet", source, tmp_path / "googlenet.weights.h5")  # keeps the aux heads, like the file
    x = _probe()
    model = keras_impl.googlenet(weights=target, transform_input=True, classifier_activation=None)
    assert _rel(_torchvision_logits("googlenet", x), np.asarray(model(x.transpose(0, 2, 3, 1)))) <= 1e-5


def test_finetune_builders_take_published_names(caches):
    import keras_impl.finetune as keras_finetune
    import torch_impl.finetune as torch_finetune

    t = torch_finetune.tuning_model("googlenet", 5, weights="IMAGENET1K_V1")
    assert "transform_input" in dict(t.named_children()) and t.fc.out_features == 5
    k = keras_finetune.tuning_model("googlenet", 5, weights="imagenet", size=64)
    assert k.output_shape == (None, 5)
    assert any(layer.name == "transform_input" for layer in k.layers)
    assert np.allclose(
        k.get_layer("conv1_conv").get_weights()[0],
        t.conv1.conv.weight.detach().numpy().transpose(2, 3, 1, 0),
        rtol=0,
        atol=0,
    )


# ----------------------------------------------------------------------------- preprocessing helpers
def test_preprocess_input_load_image_and_decode_predictions(tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    ours = keras_impl.preprocess_input(keras_impl.load_image(tmp_path / "x.png", "resnet50"))
    theirs = (
        torchvision.models.ResNet50_Weights.IMAGENET1K_V2.transforms()(Image.open(tmp_path / "x.png"))
        .numpy()
        .transpose(1, 2, 0)
    )
    assert ours.shape == (224, 224, 3) and np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(
        np.asarray(keras_impl.preprocess_input(keras.ops.convert_to_tensor(pixels))),
        keras_impl.preprocess_input(pixels),
    )
    with pytest.raises(ValueError, match=r"expects RGB images shaped \(\.\.\., H, W, 3\)"):
        keras_impl.preprocess_input(np.zeros((2, 3, 8, 8)))
    preds = np.full((2, 1000), 0.0001, np.float32)
    preds[0, 1], preds[1, 207] = 0.9, 0.8
    decoded = keras_impl.decode_predictions(preds, top=3)
    assert (
        decoded[0][0] == ("n01443537", "goldfish", pytest.approx(0.9))
        and decoded[1][0][:2] == ("n02099601", "golden_retriever")
        and len(decoded[1]) == 3
    )
    with pytest.raises(ValueError, match=r"shaped \(samples, 1000\)"):
        keras_impl.decode_predictions(np.zeros((2, 10)))
