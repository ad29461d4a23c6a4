"""``python -m parity style-transfer``: Gatys' style transfer, the same in torch and Keras.

Small and fast: VGG19 (seeded random weights, never downloaded) at 48x48, a few Adam steps on CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from parity import style_transfer as st
from parity.__main__ import main
from parity.comparison import backends

PNG = b"\x89PNG\r\n\x1a\n"
SIZE = 48  # conv5_1 sees 3x3 positions: every layer of Gatys' loss is there
STEPS = 3


@pytest.fixture(scope="module")
def images():
    (content, _), (style, _) = st.default_images()
    return content, style


def test_gatys_layers_are_the_relus_after_the_named_convolutions():
    from torch import nn

    import torch_impl

    features = torch_impl.vgg19(init_weights=False).features
    by_name, block, conv = {}, 1, 0  # Gatys' convB_C: the C-th convolution of block B (blocks end at a pool)
    for index, module in enumerate(features):
        if isinstance(module, nn.MaxPool2d):
            block, conv = block + 1, 0
        elif isinstance(module, nn.Conv2d):
            conv += 1
            by_name[f"conv{block}_{conv}"] = index
    assert len(by_name) == 16
    for name, path in st.LAYERS.items():
        index = int(path.split(".")[1])
        assert isinstance(features[index], nn.ReLU), path
        assert index - 1 == by_name[name], (name, path)


def test_numpy_adam_is_torch_adam():
    """The one update rule: torch.optim.Adam's arithmetic (away from the [0, 1] clip)."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.7, (2, 3, 4, 4))
    p = torch.tensor(x, requires_grad=True)
    reference = torch.optim.Adam([p], lr=1e-3)
    adam = st.Adam(lr=1e-3)
    for _ in range(5):
        g = rng.standard_normal(x.shape)
        x = adam.step(x, g)
        p.grad = torch.from_numpy(g)
        reference.step()
    np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_float64_curves_agree_in_process(images):
    """In float64 torch and Keras (this process's backend, tensorflow by default) compute the same
    losses and gradients: the loss curves from the same start agree to 1e-6 relative."""
    r = st.style_transfer(*images, steps=STEPS, size=SIZE, dtype="float64", progress=False)
    assert len(r.torch_loss) == len(r.keras_loss) == STEPS
    assert r.max_gap <= st.FLOAT64_RTOL, r.gaps
    assert r.torch_loss[-1] < r.torch_loss[0]  # the image is being optimised
    assert np.abs(np.asarray(r.torch_image, int) - np.asarray(r.keras_image, int)).max() <= 1


@pytest.mark.parametrize(
    "twin",
    [{"keras_perturb": 1e-2}, {"keras_style_layers": st.STYLE_LAYERS[:4]}],
    ids=["one-changed-weight", "conv5_1-left-out"],
)
def test_a_different_keras_twin_disagrees(images, twin):
    r = st.style_transfer(*images, steps=2, size=SIZE, dtype="float64", progress=False, **twin)
    assert r.max_gap > 10 * st.FLOAT64_RTOL, r.gaps  # one weight changed by 1%: 6e-5 (measured)


def test_command_prints_both_curves_and_writes_one_png(tmp_path, capsys):
    out, summary = tmp_path / "style.png", tmp_path / "style.json"
    code = main(["style-transfer", "--size", str(SIZE), "--steps", "2", "--out", str(out), "--json", str(summary)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["style.json", "style.png"]  # no temporary file left
    result = json.loads(summary.read_text())
    assert result["passed"]
    (backend,) = result["results"]
    assert "largest relative loss gap over 2 steps" in printed and "seconds per step torch" in printed
    assert result["results"][backend]["max_gap"] <= st.FLOAT64_RTOL


def test_another_backend_in_a_subprocess(tmp_path, capsys):
    """The same on another installed Keras backend (torch first: no compile step), via a subprocess."""
    here = backends.current()
    others = [b for b in sorted(backends.installed(), key=lambda b: b != "torch") if b != here]
    if not others:
        pytest.skip("one Keras backend installed")
    out = tmp_path / "style.png"
    code = main(
        ["style-transfer", "--size", str(SIZE), "--steps", "2", "--keras-backend", others[0], "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"{others[0]}: largest relative loss gap" in printed and "PASS" in printed
    assert out.read_bytes()[:8] == PNG


@pytest.mark.parametrize("flag", ["--content", "--style"])
def test_a_missing_or_unreadable_image_is_one_error_line(tmp_path, capsys, flag):
    out = tmp_path / "style.png"
    assert main(["style-transfer", flag, str(tmp_path / "nope.jpg"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.jpg' does not exist" in err[0], err
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert main(["style-transfer", flag, str(text), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not an image Pillow can read" in err[0], err
    assert not out.exists()
