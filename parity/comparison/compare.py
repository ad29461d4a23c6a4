"""``compare(torch_model, keras_model, inputs)``: how far apart two models are, and where.

Figures, for the output and (with ``layers=True``) for every spec node: max absolute error,
max error relative to the reference's scale (max |torch output|), top-1 and top-5 agreement.
NaN or Inf anywhere fails. A comparison passes when ``max_abs <= atol + rtol * scale`` and top-1
agrees (a disagreement between two classes whose torch logits differ by less than that bound is
a tie, not a failure).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

import cnnspec
from cnnspec import nodes as n

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 0.0


@dataclass
class Figures:
    name: str
    shape: tuple
    max_abs: float
    scale: float
    max_rel: float
    finite: bool
    top1: float | None = None
    top5: float | None = None
    passed: bool = False


@dataclass
class Report:
    model: str
    label: str  # e.g. "torch vs keras"
    output: Figures
    layers: list[Figures] = field(default_factory=list)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    @property
    def passed(self) -> bool:
        return self.output.passed

    @property
    def first_divergence(self) -> Figures | None:
        """The first layer, in execution order, whose figures fail the tolerance."""
        return next((f for f in self.layers if not f.passed), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        first = self.first_divergence
        d["first_divergence"] = first.name if first else None
        return d


def figures(
    name: str, reference: np.ndarray, other: np.ndarray, rtol: float, atol: float, classes: bool = False
) -> Figures:
    """The figures of ``other`` against ``reference`` (same shape, same layout)."""
    reference = np.asarray(reference, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if reference.shape != other.shape:
        return Figures(name, tuple(reference.shape), float("inf"), float("nan"), float("inf"), False, passed=False)
    if reference.size == 0:  # nothing compared is not agreement
        return Figures(name, tuple(reference.shape), float("nan"), float("nan"), float("nan"), True, passed=False)
    finite = bool(np.isfinite(reference).all() and np.isfinite(other).all())
    if not finite:
        return Figures(name, tuple(reference.shape), float("nan"), float("nan"), float("nan"), False, passed=False)
    diff = np.abs(reference - other)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(reference).max()) if reference.size else 0.0
    bound = atol + rtol * scale
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
    passed = max_abs <= bound
    top1 = top5 = None
    if classes and reference.ndim == 2:
        ref_top1, oth_top1 = reference.argmax(1), other.argmax(1)
        top1 = float((ref_top1 == oth_top1).mean())
        rows = np.arange(len(reference))
        tie = (reference[rows, ref_top1] - reference[rows, oth_top1]) <= 2 * bound
        passed = passed and bool(np.all((ref_top1 == oth_top1) | tie))
        k = min(5, reference.shape[1])
        ref5 = np.sort(np.argsort(-reference, axis=1)[:, :k], axis=1)
        oth5 = np.sort(np.argsort(-other, axis=1)[:, :k], axis=1)
        top5 = float((ref5 == oth5).all(axis=1).mean())
    return Figures(name, tuple(reference.shape), max_abs, scale, max_rel, finite, top1, top5, passed)


# ---------------------------------------------------------------------------- running the models
def to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def torch_outputs(model, inputs: np.ndarray, paths: list[str]) -> dict[str, np.ndarray]:
    """Eval-mode outputs of the model and of the modules at ``paths`` (forward hooks)."""
    import torch

    from torch_impl.layers import register_bare_hook

    captured: dict[str, np.ndarray] = {}
    hooks = []
    for path in paths:
        parent, _, name = path.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        # a copy: the next ReLU works in place (as torchvision's do) and would change a shared array
        if name in owner.__dict__.get("_bare_steps", {}):  # a class token, a position embedding: no module of its own
            hooks.append(
                register_bare_hook(
                    owner, name, lambda o, p=path: captured.__setitem__(p, o.detach().cpu().float().numpy().copy())
                )
            )
        else:
            module = model.get_submodule(path)
            hooks.append(
                module.register_forward_hook(
                    lambda m, i, o, p=path: captured.__setitem__(p, o.detach().cpu().float().numpy().copy())
                )
            )
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            out = model(torch.from_numpy(inputs).to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    captured["output"] = out.detach().cpu().float().numpy()
    return captured


def keras_outputs(model, inputs_nhwc: np.ndarray, layer_names: list[str]) -> dict[str, np.ndarray]:
    """Inference outputs of the model and of the named layers (one multi-output model)."""
    import keras

    outputs = model.outputs if len(model.outputs) == 1 else model.outputs[:1]
    from keras_impl import layer_name

    probe = keras.Model(
        model.inputs[0], list(outputs) + [model.get_layer(layer_name(name)).output for name in layer_names]
    )
    results = probe(inputs_nhwc, training=False)
    if not isinstance(results, (list, tuple)):  # Keras returns a lone output unwrapped
        results = [results]
    results = [np.asarray(keras.ops.convert_to_numpy(r)) for r in results]
    out = dict(zip(layer_names, results[1:]))
    out["output"] = results[0]
    return out


def comparable_layers(spec: cnnspec.ModelSpec, keras_model, include_aux: bool = False) -> list[str]:
    """Spec paths present as a layer in keras and a module in torch, in execution order: leaves, and
    the containers that have a layer of their own (inception concats, gates, residual sums) after
    their children, so that ``first_divergence`` names the node that computed a difference first."""
    from keras_impl import layer_name

    names = {layer.name for layer in keras_model.layers}
    containers, out = [], []
    for path, node in spec.walk(include_aux=include_aux):
        while containers and not path.startswith(containers[-1] + "."):
            out.append(containers.pop())  # every child seen: the container's own output comes next
        if isinstance(node, n.Sequential) or (isinstance(node, n.Residual) and node.post is not None):
            # no layer of their own (a Residual's output is its post activation, or its sum, named by its path)
            continue
        if layer_name(path) not in names:
            continue
        if n.children_of(node):
            containers.append(path)
        else:
            out.append(path)
    return out + containers[::-1]


def _check_logits(spec: cnnspec.ModelSpec, keras_model) -> None:
    from keras_impl import layer_name

    try:
        layer = keras_model.get_layer(layer_name(spec.classifier))
    except ValueError:
        return  # include_top=False
    activation = getattr(layer, "activation", None)
    if activation is not None and getattr(activation, "__name__", "linear") != "linear":
        raise ValueError(
            f"the keras model's classifier applies {activation.__name__}; "
            "build it with classifier_activation=None to compare logits"
        )


def strict_float32() -> None:
    """Turns off TF32 in every framework present, so "float32" means float32 on GPUs too.

    On Ampere and newer GPUs, cuDNN/cuBLAS (torch convs by default), XLA (jax by default) and
    TensorFlow compute float32 convolutions and matmuls in TF32 (10-bit mantissa), which moves
    outputs by ~1e-3 relative and makes a correct weight transfer look broken (measured on an
    H100: resnet50 torch (CPU) vs keras on jax (GPU) differed by 5e-4 relative). Parity is about
    the models, not the hardware's shortcuts, so the comparison runs in true float32. This is a
    process-wide setting.
    """
    import sys

    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_default_matmul_precision", "highest")
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].config.experimental.enable_tensor_float_32_execution(False)


def compare(
    torch_model,
    keras_model,
    inputs: np.ndarray,
    layers: bool = False,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    label: str = "torch vs keras",
) -> Report:
    """Compares a torch_impl and a keras_impl model on ``inputs`` (NCHW float32, torch layout).

    The torch model is the reference. With ``layers=True`` every spec node is compared too, so
    ``report.first_divergence`` names where the two first part.
    """
    spec = torch_model.spec
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, received rtol={rtol!r}, atol={atol!r}")
    inputs = _check_inputs(spec, inputs)
    _check_logits(spec, keras_model)
    strict_float32()
    paths = comparable_layers(spec, keras_model) if layers else []
    t = torch_outputs(torch_model, inputs, paths)
    k = keras_outputs(keras_model, to_nhwc(inputs), paths)
    output = figures("output", to_nhwc(t["output"]), k["output"], rtol, atol, classes=t["output"].ndim == 2)
    per_layer = []
    if layers:
        shapes = cnnspec.analyse(spec, tuple(inputs.shape[2:]), include_aux=False).by_path()
        flattened = None  # (C, H, W) between a spatial Flatten and the next Linear
        for path in paths:
            node = spec.node(path)
            if isinstance(node, n.Flatten):
                before = shapes[path].input_shape
                flattened = tuple(before) if len(before) == 3 else None
            elif isinstance(node, n.Linear):
                flattened = None
            ref = to_nhwc(t[path])
            if flattened is not None:  # torch's vector is in (C, H, W) order, keras' in (H, W, C)
                ref = to_nhwc(t[path].reshape((-1,) + flattened)).reshape(len(ref), -1)
            per_layer.append(figures(path, ref, k[path], rtol, atol))
    return Report(spec.name, label, output, per_layer, rtol, atol)


def _check_inputs(spec: cnnspec.ModelSpec, inputs) -> np.ndarray:
    inputs = np.asarray(inputs)
    c = spec.input_size[0]
    if inputs.ndim != 4 or inputs.shape[1] != c:
        raise ValueError(
            f"{spec.name}: expected inputs of shape (N, {c}, H, W) (torch layout), received {inputs.shape}"
        )
    if not np.issubdtype(inputs.dtype, np.floating):
        raise TypeError(f"{spec.name}: expected floating-point inputs, received dtype {inputs.dtype}")
    if inputs.shape[0] == 0:
        raise ValueError(f"{spec.name}: expected at least one image, received an empty batch {inputs.shape}")
    if not np.isfinite(inputs).all():
        raise ValueError(
            f"{spec.name}: expected finite inputs, received {int((~np.isfinite(inputs)).sum())} NaN/Inf values"
        )
    cnnspec.analyse(spec, tuple(inputs.shape[2:]), include_aux=False)  # too small: one line naming the minimum
    return inputs.astype(np.float32, copy=False)
