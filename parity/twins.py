"""A torch_impl model and its keras_impl twin, built with the same options; the options themselves.

Every comparison, conversion and export starts from such a pair: ``python -m parity check`` and
``sidebyside`` (:mod:`parity.comparison`), ``convert`` (:mod:`parity.weights.convert`), every
export (:func:`model_to_export`: ONNX and the deployment targets) and the published weights'
conversion (:mod:`parity.fetch`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import cnnspec
from cnntune.policy import no_aux_heads


def inference_options(name: str) -> dict:
    """Options that make both frameworks build the same inference graph (no aux heads)."""
    return no_aux_heads(name)  # the fine-tuning core's rule: one owner


def keras_factory_options(options: dict) -> dict:
    """Spec options as keras_impl's factories take them (keras.applications says ``classes``)."""
    return {("classes" if k == "num_classes" else k): v for k, v in options.items()}


def build_pair(name: str, size: tuple[int, int] | None = None, weights=None, weights_follow: bool = False, **options):
    """A torch_impl model (from ``weights`` or untouched) and the keras_impl twin, logits out.
    ``weights_follow``: the caller assigns every weight of both next (a transfer, seeded random
    weights), so neither build draws: the Keras one starts at zeros
    (:func:`keras_impl.host_draws.weights_follow`), the torch one without ``weights`` is built on
    the meta device and given uninitialised memory (BatchNorm's step counters zeroed). A weight
    left unassigned is then zeros or garbage, which a comparison catches (NaN never passes)."""
    import torch

    import keras_impl
    import torch_impl
    from keras_impl.host_draws import weights_follow as keras_weights_follow

    options = {**inference_options(name), **options}
    if weights_follow and weights is None:  # VGG19's 143 M default draws: 0.4 s
        with torch.device("meta"):
            torch_model = torch_impl.get_model(name, init_weights=False, **options)
        torch_model = torch_model.to_empty(device="cpu").eval()
        for key, buffer in torch_model.named_buffers():
            if key.endswith("num_batches_tracked"):
                buffer.zero_()
    else:
        torch_model = torch_impl.get_model(name, weights=weights, init_weights=False, **options).eval()
    spec = torch_model.spec
    h, w = size or spec.input_size[1:]
    with keras_weights_follow() if weights_follow else contextlib.nullcontext():
        keras_model = keras_impl.get_model(
            name, classifier_activation=None, input_shape=(h, w, spec.input_size[0]), **keras_factory_options(options)
        )
    return torch_model, keras_model


def options_from_checkpoint(name: str, weights) -> dict:
    """num_classes (and GoogLeNet's aux heads) read from a torch checkpoint's tensors."""
    from torch_impl import read_state_dict

    state = read_state_dict(weights) if not isinstance(weights, dict) else weights
    spec = cnnspec.get(name)
    key = f"{spec.classifier}.weight"
    if key not in state:
        raise ValueError(f"{weights} is not a {name} checkpoint: it has no {key!r}")
    options = {"num_classes": int(state[key].shape[0])}
    if spec.aux_heads:
        options["aux_logits"] = any(k.startswith(spec.aux_heads[0].name + ".") for k in state)
    return options


def model_to_export(name: str, framework: str, weights=None, size: tuple[int, int] | None = None, seed: int = 0):
    """The one model ``python -m parity export`` writes, from ``framework`` ("torch" or "keras"):
    from a torch checkpoint (transferred to the twin for keras), a Keras ``.weights.h5`` (keras
    only), or seeded random weights when ``weights`` is None."""
    import keras_impl

    from .weights.copying import transfer_weights
    from .weights.randomise import randomise_torch

    if framework not in ("torch", "keras"):
        raise ValueError(f"framework must be 'torch' or 'keras', received {framework!r}")
    if weights is not None and Path(weights).name.endswith(".weights.h5"):
        if framework != "keras":
            raise ValueError("a Keras .weights.h5 exports with --framework keras (or convert it first)")
        spec = cnnspec.get(name, **inference_options(name))
        c, (h, w) = spec.input_size[0], size or spec.input_size[1:]
        return keras_impl.get_model(name, weights=weights, classifier_activation=None, input_shape=(h, w, c))
    options = options_from_checkpoint(name, weights) if weights is not None else {}
    torch_model, keras_model = build_pair(name, size, weights=weights, weights_follow=True, **options)
    if weights is None:
        randomise_torch(torch_model, seed)
    if framework == "torch":
        return torch_model
    transfer_weights(torch_model, keras_model)
    return keras_model
