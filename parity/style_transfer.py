"""``python -m parity style-transfer``: Gatys et al.'s neural style transfer, the same in both frameworks.

Gatys, Ecker and Bethge (2016) optimise the pixels of an image so that VGG19's features match a
content image's at one layer and the Gram matrices of its features match a style image's at
five. Here both frameworks run it from the same start image (the content image) with the same
weights (torch_impl's VGG19, seeded random or published, transferred to the keras_impl twin):

* The layers, as Gatys names them, are the ReLU outputs after the convolutions (the paper's
  activations), as torch module paths: ``conv1_1 -> features.1``, ``conv2_1 -> features.6``,
  ``conv3_1 -> features.11``, ``conv4_1 -> features.20``, ``conv5_1 -> features.29`` (style) and
  ``conv4_2 -> features.22`` (content). Both sides take them by these names
  (``torch_impl.feature_extractor``, ``keras_impl.feature_extractor``).
* The loss is the paper's: content ``1/2 sum (F - P)^2`` at conv4_2; per style layer
  ``E_l = sum (G - A)^2 / (4 C^2)`` with ``G = F F^T / M`` (C channels, M = H*W positions: the
  paper's ``1/(4 N^2 M^2)`` with the unnormalised Gram), weighted equally (1/5 each);
  ``content_weight * content + style_weight * sum_l w_l E_l`` (alpha/beta = 1e-3, the paper's).
  The formula is written once (:func:`gatys_loss`); each framework supplies only its Gram
  matrix (NCHW or NHWC) and its array operations.
* The update rule is written once, in numpy (:class:`Adam` on the pixels, fixed learning rate,
  the pixels clipped to [0, 1] after every step). Each framework only returns the loss and its
  gradient with respect to the image: torch autograd; Keras per backend (tensorflow's
  ``GradientTape``, ``jax.value_and_grad`` of a ``stateless_call``, torch autograd on the Keras
  model). The images are normalised with VGG's ImageNet statistics inside each framework.

Measured (see the README's "Neural style transfer"; 128x128, 20 steps, lr 0.05, seeded random
weights, Keras on tensorflow): in float64 the two loss curves agree to 3.3e-15 relative (the
tolerance is 1e-6); in float32 the gap is 8e-8 after one step and grows to 3.5e-3 by step 20
(Adam divides each pixel's gradient by its own running scale, so rounding differences in small
gradients become full-size steps, and the clip at [0, 1] can fall differently).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from cnnbase.atomic import atomic_write

# Gatys' names -> torchvision's vgg19 module paths: the ReLU after each named convolution
LAYERS = {
    "conv1_1": "features.1",
    "conv2_1": "features.6",
    "conv3_1": "features.11",
    "conv4_1": "features.20",
    "conv5_1": "features.29",
    "conv4_2": "features.22",
}
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_2"
CONTENT_WEIGHT = 1.0
STYLE_WEIGHT = 1e3
LR = 0.02
DEFAULT_STEPS = 20
DEFAULT_SIZE = 128
FLOAT64_RTOL = 1e-6


# ----------------------------------------------------------------------------- images
def _texture(size: int = 256) -> np.ndarray:
    """A drawn colour texture (HWC uint8): the style image where scikit-image is not installed."""
    y, x = np.mgrid[0:size, 0:size] / size
    r = 0.5 + 0.5 * np.sin(2 * np.pi * (6 * x + 3 * y))
    g = 0.5 + 0.5 * np.sin(2 * np.pi * (5 * y - 2 * x) + 1.0)
    b = 0.5 + 0.5 * np.sin(2 * np.pi * 9 * np.hypot(x - 0.5, y - 0.5))
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def default_images() -> tuple[tuple[np.ndarray, str], tuple[np.ndarray, str]]:
    """(content, its name), (style, its name), shipped with a package, never downloaded:
    scikit-image's chelsea() and coffee() where it is installed, else matplotlib's sample
    grace_hopper.jpg and a drawn texture (:func:`_texture`)."""
    try:
        import skimage.data

        return (skimage.data.chelsea(), "skimage.data.chelsea()"), (skimage.data.coffee(), "skimage.data.coffee()")
    except ImportError:
        from matplotlib import cbook
        from PIL import Image

        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            content = np.asarray(im.convert("RGB"))
        return (content, "matplotlib's grace_hopper.jpg"), (_texture(), "a drawn wave texture")


def load_image(path: str | os.PathLike, what: str) -> np.ndarray:
    """An image file as HWC uint8 RGB; a missing or unreadable file is one clear error."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} image {str(path)!r} does not exist (expected an image file: PNG, JPEG, ...)")
    try:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{what} image {str(path)!r} is not an image Pillow can read ({err})") from None


def to_square(image: np.ndarray, size: int, dtype: str) -> np.ndarray:
    """HWC uint8 -> (size, size, 3) in [0, 1], centre-cropped to a square and resized (bicubic)."""
    from PIL import Image

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    im = Image.fromarray(np.ascontiguousarray(image[top : top + side, left : left + side, :3]))
    im = im.resize((size, size), Image.Resampling.BICUBIC)
    return (np.asarray(im, np.float64) / 255.0).astype(dtype)


# ----------------------------------------------------------------------------- the loss, once
def gatys_loss(features: dict, targets: dict, gram, total, style_layers=STYLE_LAYERS, weights=None):
    """``content_weight * 1/2 sum (F - P)^2 + style_weight * sum_l w_l sum (G_l - A_l)^2 / (4 C_l^2)``
    over one framework's ``features`` ({torch path: map}); ``targets`` holds P (content path) and
    the style grams A; ``gram(map)`` is the framework's Gram matrix F F^T / M (C x C), ``total``
    its sum over all elements."""
    weights = weights or {name: 1.0 / len(style_layers) for name in style_layers}
    content = LAYERS[CONTENT_LAYER]
    loss = CONTENT_WEIGHT * 0.5 * total((features[content] - targets[content]) ** 2)
    for name in style_layers:
        path = LAYERS[name]
        g = gram(features[path])
        channels = targets[path].shape[0]
        loss = loss + STYLE_WEIGHT * weights[name] * total((g - targets[path]) ** 2) / (4.0 * channels**2)
    return loss


# ----------------------------------------------------------------------------- the update, once
class Adam:
    """Adam (Kingma and Ba) on a numpy array, the pixels clipped to [0, 1] after each step; the
    same arithmetic for both frameworks' gradients."""

    def __init__(self, lr: float = LR, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = self.v = None
        self.t = 0

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        grad = grad.astype(x.dtype, copy=False)
        if self.m is None:
            self.m, self.v = np.zeros_like(x), np.zeros_like(x)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return np.clip(x - self.lr * m_hat / (np.sqrt(v_hat) + self.eps), 0.0, 1.0).astype(x.dtype)


# ----------------------------------------------------------------------------- torch's gradient
def torch_objective(model, content: np.ndarray, style: np.ndarray, mean, std, style_layers=STYLE_LAYERS):
    """``f(image NCHW) -> (loss, d loss / d image)`` with torch autograd on ``model``'s features."""
    import torch

    import torch_impl

    paths = list(dict.fromkeys(LAYERS[n] for n in (*style_layers, CONTENT_LAYER)))
    extract = torch_impl.feature_extractor(model, paths).eval().requires_grad_(False)  # the image's gradient only
    dtype = next(model.parameters()).dtype
    m = torch.tensor(mean, dtype=dtype).reshape(1, 3, 1, 1)
    s = torch.tensor(std, dtype=dtype).reshape(1, 3, 1, 1)

    def features(x):
        return extract((x - m) / s)

    def gram(f):
        c = f.shape[1]
        flat = f.reshape(c, -1)
        return flat @ flat.T / flat.shape[1]

    with torch.no_grad():
        content_maps = features(torch.from_numpy(content))
        style_maps = features(torch.from_numpy(style))
    content_path = LAYERS[CONTENT_LAYER]
    targets = {content_path: content_maps[content_path]}
    targets.update({LAYERS[n]: gram(style_maps[LAYERS[n]]) for n in style_layers})

    def objective(image: np.ndarray) -> tuple[float, np.ndarray]:
        x = torch.from_numpy(image).requires_grad_(True)
        loss = gatys_loss(features(x), targets, gram, torch.sum, style_layers)
        loss.backward()
        return float(loss.detach()), x.grad.numpy()

    return objective


# ----------------------------------------------------------------------------- Keras' gradient
def keras_objective(model, content: np.ndarray, style: np.ndarray, mean, std, style_layers=STYLE_LAYERS):
    """``f(image NHWC) -> (loss, d loss / d image)`` on this process's Keras backend: tensorflow's
    GradientTape, jax.value_and_grad of the extractor's stateless_call, torch autograd."""
    import keras
    from keras import ops

    import keras_impl

    paths = list(dict.fromkeys(LAYERS[n] for n in (*style_layers, CONTENT_LAYER)))
    extract = keras_impl.feature_extractor(model, paths)
    floatx = keras.config.floatx()
    m = np.asarray(mean, floatx).reshape(1, 1, 1, 3)
    s = np.asarray(std, floatx).reshape(1, 1, 1, 3)

    def gram(f):
        c = f.shape[-1]
        flat = ops.reshape(f, (-1, c))
        return ops.matmul(ops.transpose(flat), flat) / flat.shape[0]

    def maps(outputs) -> dict:
        return dict(zip(paths, outputs)) if isinstance(outputs, list | tuple) else outputs

    def features(x):
        return maps(extract((x - m) / s, training=False))

    content_path = LAYERS[CONTENT_LAYER]
    content_maps, style_maps = features(ops.convert_to_tensor(content)), features(ops.convert_to_tensor(style))
    constant = lambda t: ops.convert_to_tensor(ops.convert_to_numpy(t))  # noqa: E731  (no graph behind it)
    targets = {content_path: constant(content_maps[content_path])}
    targets.update({LAYERS[n]: constant(gram(style_maps[LAYERS[n]])) for n in style_layers})

    def loss_of(outputs):
        return gatys_loss(maps(outputs), targets, gram, ops.sum, style_layers)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(jit_compile=False)
        def value_and_grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = loss_of(extract((x - m) / s, training=False))
            return loss, tape.gradient(loss, x)

        def objective(image: np.ndarray) -> tuple[float, np.ndarray]:
            loss, grad = value_and_grad(tf.constant(image))
            return float(loss), grad.numpy()

    elif backend == "jax":
        import jax

        trainable = [v.value for v in extract.trainable_variables]
        frozen = [v.value for v in extract.non_trainable_variables]

        def stateless(x, trainable, frozen):
            outputs, _ = extract.stateless_call(trainable, frozen, (x - m) / s, training=False)
            return loss_of(outputs)

        jitted = jax.jit(jax.value_and_grad(stateless))

        def objective(image: np.ndarray) -> tuple[float, np.ndarray]:
            loss, grad = jitted(image, trainable, frozen)
            return float(loss), np.asarray(grad)

    elif backend == "torch":
        import torch

        for v in extract.variables:  # the image's gradient only
            v.value.requires_grad_(False)

        def objective(image: np.ndarray) -> tuple[float, np.ndarray]:
            x = torch.from_numpy(image).requires_grad_(True)
            loss = loss_of(extract((x - torch.from_numpy(m)) / torch.from_numpy(s), training=False))
            loss.backward()
            return float(loss.detach()), x.grad.numpy()

    else:  # pragma: no cover - Keras has no other backend with gradients
        raise ValueError(f"no gradient adapter for Keras backend {backend!r}")
    return objective


# ----------------------------------------------------------------------------- both, from one start
@dataclass
class StyleResult:
    backend: str
    dtype: str
    size: int
    steps: int
    weights: str
    torch_loss: list[float] = field(default_factory=list)
    keras_loss: list[float] = field(default_factory=list)
    seconds_per_step: dict[str, float] = field(default_factory=dict)  # steps 2.. (the first traces, compiles)
    first_step_seconds: dict[str, float] = field(default_factory=dict)
    torch_image: list = field(default_factory=list)  # HWC uint8 as nested lists (JSON between processes)
    keras_image: list = field(default_factory=list)

    @property
    def gaps(self) -> list[float]:
        return [
            abs(t - k) / max(abs(t), 1e-300) if np.isfinite(t) and np.isfinite(k) else float("inf")
            for t, k in zip(self.torch_loss, self.keras_loss)
        ]

    @property
    def max_gap(self) -> float:
        return max(self.gaps, default=float("inf"))

    def to_dict(self) -> dict:
        return {**asdict(self), "gaps": self.gaps, "max_gap": self.max_gap}

    @classmethod
    def from_dict(cls, d: dict) -> StyleResult:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def _uint8(image_hwc: np.ndarray) -> list:
    return np.round(np.clip(image_hwc, 0, 1) * 255).astype(np.uint8).tolist()


def build_twins(weights: str | None, size: int, dtype: str, seed: int = 0, keras_perturb: float = 0.0):
    """torch_impl's VGG19 (seeded random weights, or published ``weights``) in ``dtype`` and its
    keras_impl twin without the classifier, the weights transferred torch -> Keras.
    ``keras_perturb``: scale one weight of the twin's first convolution by (1 + it) (the tests' twin)."""
    import torch

    import keras_impl
    import torch_impl

    from .training.steps import keras_dtype
    from .weights.copying import transfer_weights
    from .weights.randomise import randomise_torch

    torch.manual_seed(seed)
    torch_model = torch_impl.vgg19(weights=weights, init_weights=False).eval()
    if weights is None:
        randomise_torch(torch_model.features, seed)  # the classifier is never used here
    torch_model = torch_model.to(getattr(torch, dtype))
    with keras_dtype(dtype):
        keras_model = keras_impl.vgg19(weights=None, include_top=False, input_shape=(size, size, 3))
    transfer_weights(torch_model, keras_model)
    if keras_perturb:
        kernel = keras_model.get_layer(keras_impl.layer_name("features.0")).kernel
        value = np.array(kernel.numpy() if hasattr(kernel, "numpy") else kernel.value)
        value[0, 0, 0, 0] *= 1 + keras_perturb
        kernel.assign(value)
    return torch_model, keras_model


def style_transfer(
    content: np.ndarray,
    style: np.ndarray,
    steps: int = DEFAULT_STEPS,
    size: int = DEFAULT_SIZE,
    dtype: str = "float64",
    weights: str | None = None,
    seed: int = 0,
    lr: float = LR,
    keras_style_layers=STYLE_LAYERS,
    keras_perturb: float = 0.0,
    progress: bool = True,
) -> StyleResult:
    """Runs Gatys' optimisation in torch and in Keras (this process's backend) side by side from
    the same start (the content image), ``steps`` Adam steps each; ``content``/``style`` are HWC
    uint8 images. ``keras_style_layers``/``keras_perturb``: a different twin (the tests)."""
    import keras

    import cnnspec

    from .comparison.compare import strict_float32
    from .training.steps import DTYPES, keras_dtype

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, received {dtype!r}")
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, received {steps}")
    if size < 32:
        raise ValueError(f"--size must be >= 32 (VGG19's conv5_1 sees size/16 pixels), received {size}")
    strict_float32()
    spec = cnnspec.get("vgg19")
    start_hwc = to_square(content, size, dtype)
    style_hwc = to_square(style, size, dtype)
    nchw = lambda a: np.ascontiguousarray(a.transpose(2, 0, 1)[None])  # noqa: E731
    nhwc = lambda a: np.ascontiguousarray(a[None])  # noqa: E731
    torch_model, keras_model = build_twins(weights, size, dtype, seed, keras_perturb)
    t_obj = torch_objective(torch_model, nchw(start_hwc), nchw(style_hwc), spec.mean, spec.std)
    result = StyleResult(keras.backend.backend(), dtype, size, steps, weights or f"seeded random (seed {seed})")
    with keras_dtype(dtype):
        k_obj = keras_objective(
            keras_model, nhwc(start_hwc), nhwc(style_hwc), spec.mean, spec.std, tuple(keras_style_layers)
        )
        x_t, x_k = nchw(start_hwc), nhwc(start_hwc)  # the same start, in each framework's layout
        opt_t, opt_k = Adam(lr), Adam(lr)
        spent: dict[str, list[float]] = {"torch": [], "keras": []}
        if progress:
            print(
                f"{'step':>9s} {'torch loss':>20s} {'keras loss':>20s} {'rel gap':>9s}  s/step torch keras", flush=True
            )
        for step in range(steps):
            t0 = time.perf_counter()
            loss_t, grad_t = t_obj(x_t)
            t1 = time.perf_counter()
            loss_k, grad_k = k_obj(x_k)
            t2 = time.perf_counter()
            x_t, x_k = opt_t.step(x_t, grad_t), opt_k.step(x_k, grad_k)
            spent["torch"].append(t1 - t0)
            spent["keras"].append(t2 - t1)
            result.torch_loss.append(loss_t)
            result.keras_loss.append(loss_k)
            if progress:
                print(
                    f"{step + 1:4d}/{steps:<4d} {loss_t:20.12e} {loss_k:20.12e} {result.gaps[-1]:9.1e}"
                    f"  {t1 - t0:6.2f} {t2 - t1:6.2f}",
                    flush=True,
                )
    # the first step of each side includes tracing/compiling: the mean over the others when there are any
    result.seconds_per_step = {k: round(float(np.mean(v[1:] or v)), 4) for k, v in spent.items()}
    result.first_step_seconds = {k: round(v[0], 4) for k, v in spent.items()}
    result.torch_image = _uint8(x_t[0].transpose(1, 2, 0))
    result.keras_image = _uint8(x_k[0])
    return result


# ----------------------------------------------------------------------------- the figure
def plot(results: dict[str, StyleResult], content: np.ndarray, style: np.ndarray, names: tuple[str, str], path) -> Path:
    """Content, style, the torch result and each backend's Keras result side by side; below, both
    loss curves and their relative gap per step. One PNG, written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .comparison.plot import COLOURS

    first = next(iter(results.values()))
    panels = [(content, f"content: {names[0]}"), (style, f"style: {names[1]}")]
    panels.append((np.asarray(first.torch_image, np.uint8), "torch_impl"))
    panels += [(np.asarray(r.keras_image, np.uint8), f"keras_impl on {b}") for b, r in results.items()]
    fig = Figure(figsize=(3 * len(panels), 6.4))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, len(panels), height_ratios=[3, 2])
    for i, (image, title) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(image)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    half = len(panels) // 2
    curves, gaps = fig.add_subplot(grid[1, :half]), fig.add_subplot(grid[1, half:])
    steps = np.arange(1, first.steps + 1)
    curves.plot(steps, first.torch_loss, color="black", linewidth=2.5, alpha=0.35, label="torch_impl")
    for backend, r in results.items():
        curves.plot(steps, r.keras_loss, color=COLOURS.get(backend), linestyle="--", label=f"keras_impl on {backend}")
        gaps.plot(
            steps,
            np.maximum(r.gaps, 1e-17),
            color=COLOURS.get(backend),
            marker=".",
            label=f"{backend}: max {r.max_gap:.1e}",
        )
    curves.set_yscale("log")
    curves.set_xlabel("Adam step on the pixels")
    curves.set_ylabel("Gatys loss")
    curves.legend(fontsize=8)
    gaps.set_yscale("log")
    gaps.set_xlabel("step")
    gaps.set_ylabel("|torch - keras| / |torch|")
    gaps.legend(fontsize=8)
    for ax in (curves, gaps):
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(
        f"Gatys style transfer, VGG19 ({first.weights}), {first.size}x{first.size}, {first.steps} steps, {first.dtype}",
        fontsize=10,
    )
    fig.tight_layout()
    return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")


# ----------------------------------------------------------------------------- the command
def add_subparser(sub, backends: tuple[str, ...]) -> None:
    """``python -m parity style-transfer``'s arguments."""
    import argparse

    p = sub.add_parser(
        "style-transfer",
        help="Gatys' neural style transfer (VGG19) in torch and Keras from the same start: both loss curves, one PNG",
    )
    p.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"Adam steps on the pixels (default {DEFAULT_STEPS})"
    )
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"image side in pixels (default {DEFAULT_SIZE})")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument(
        "--weights",
        default="none",
        metavar="DEFAULT|none",
        help="none (default): seeded random VGG19 weights; DEFAULT (or IMAGENET1K_V1): torchvision's, "
        "downloaded once, the Keras twin's by transfer",
    )
    p.add_argument("--seed", type=int, default=0, help="the random weights' seed")
    p.add_argument("--lr", type=float, default=LR, help=f"Adam's learning rate on [0, 1] pixels (default {LR})")
    p.add_argument("--content", metavar="IMG", help="default: skimage.data.chelsea() (else matplotlib's grace_hopper)")
    p.add_argument("--style", metavar="IMG", help="default: skimage.data.coffee() (else a drawn texture)")
    p.add_argument("--out", metavar="FILE.png", default="style-transfer.png", help="default style-transfer.png")
    p.add_argument(
        "--rtol",
        type=float,
        default=None,
        help=f"largest relative loss gap that passes (default {FLOAT64_RTOL:g} in float64; float32 only reports it)",
    )
    p.add_argument("--keras-backend", choices=backends, help="run the Keras side on this backend")
    p.add_argument("--all-backends", action="store_true", help="every installed Keras backend, one figure")
    p.add_argument("--json", metavar="FILE", help="write the loss curves as JSON")
    p.add_argument("--no-plot", action="store_true", help=argparse.SUPPRESS)


def _child_argv(args) -> list[str]:
    argv = ["style-transfer", "--steps", str(args.steps), "--size", str(args.size), "--dtype", args.dtype]
    argv += ["--weights", args.weights, "--seed", str(args.seed), "--lr", str(args.lr), "--no-plot"]
    for flag, value in (("--content", args.content), ("--style", args.style), ("--rtol", args.rtol)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def command(args, parser) -> int:
    """``python -m parity style-transfer``: runs, prints both curves per step, one PNG; exit 1 when
    the curves disagree beyond the tolerance."""
    import json

    from cnnbase.atomic import check_writable, write_text

    from .comparison.backends import requested, run_on_each

    if args.steps < 1 or args.size < 32:
        parser.error(f"--steps must be >= 1 and --size >= 32, received {args.steps} and {args.size}")
    if not args.no_plot:
        check_writable(args.out, (".png",))
    if args.json:
        check_writable(args.json)
    weights = None if args.weights.lower() == "none" else args.weights
    (content, content_name), (style, style_name) = default_images()
    if args.content:
        content, content_name = load_image(args.content, "content"), Path(args.content).name
    if args.style:
        style, style_name = load_image(args.style, "style"), Path(args.style).name
    rtol = args.rtol if args.rtol is not None else FLOAT64_RTOL if args.dtype == "float64" else None

    def run_here() -> dict:
        import keras

        print(
            f"VGG19 style transfer on Keras' {keras.backend.backend()}: content {content_name}, style {style_name}, "
            f"{args.size}x{args.size}, {args.steps} Adam steps (lr {args.lr:g}), {args.dtype}",
            flush=True,
        )
        r = style_transfer(
            content,
            style,
            steps=args.steps,
            size=args.size,
            dtype=args.dtype,
            weights=weights,
            seed=args.seed,
            lr=args.lr,
        )
        return {"results": {r.backend: r.to_dict()}}

    summaries = run_on_each(requested(args.keras_backend, args.all_backends), run_here, _child_argv(args), "style, ")
    results = {
        b: StyleResult.from_dict(s["results"][b]) if b in s.get("results", {}) else None for b, s in summaries.items()
    }
    failed = []
    for backend, r in results.items():
        if r is None:
            print(f"{backend}: no result ({summaries[backend].get('error', 'the run wrote no summary')})")
            failed.append(backend)
            continue
        ok = rtol is None or r.max_gap <= rtol
        verdict = "" if rtol is None else f" (tolerance {rtol:g})  {'PASS' if ok else 'FAIL'}"
        print(
            f"{backend}: largest relative loss gap over {r.steps} steps {r.max_gap:.1e}{verdict}; seconds per step "
            f"torch {r.seconds_per_step['torch']:.3f}, keras {r.seconds_per_step['keras']:.3f} "
            f"(first step {r.first_step_seconds['torch']:.2f}, {r.first_step_seconds['keras']:.2f})",
            flush=True,
        )
        if not ok:
            failed.append(backend)
    if args.json:
        write_text(
            args.json,
            json.dumps({"passed": not failed, "results": {b: r.to_dict() for b, r in results.items() if r}}),
        )
    drawn = {b: r for b, r in results.items() if r is not None}
    if not args.no_plot and drawn:
        size = next(iter(drawn.values())).size
        shown = [(to_square(im, size, "float64") * 255).round().astype(np.uint8) for im in (content, style)]
        print(f"wrote {plot(drawn, shown[0], shown[1], (content_name, style_name), args.out)}")
    if failed:
        import sys

        print(f"FAILED on: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
