"""``export(name, framework, out)``: one ONNX file for users who want the artifact."""

from __future__ import annotations

from pathlib import Path

from .export import ExportInfo, export_keras, export_torch


def export(
    name: str, framework: str, out, weights=None, size: tuple[int, int] | None = None, seed: int = 0
) -> ExportInfo:
    """Exports ``name`` from ``framework`` ("torch" or "keras") to ``out``.

    ``weights``: a torch checkpoint (either framework: it is transferred for keras), a Keras
    ``.weights.h5`` (keras), or None for seeded random weights.
    """
    import keras_impl
    import torch_impl
    from cnnbase.atomic import check_writable

    from ..twins import build_pair, options_from_checkpoint

    if framework not in ("torch", "keras"):
        raise ValueError(f"framework must be 'torch' or 'keras', received {framework!r}")
    check_writable(out, (".onnx",))  # before the export, not after it
    from ..weights.copying import transfer_weights
    from ..weights.randomise import randomise_torch

    if framework not in ("torch", "keras"):
        raise ValueError(f"framework must be 'torch' or 'keras', received {framework!r}")
    if weights is not None and Path(weights).name.endswith(".weights.h5"):
        if framework != "keras":
            raise ValueError("a Keras .weights.h5 exports with --framework keras (or convert it first)")
        spec = torch_impl.get_model(name).spec
        c, (h, w) = spec.input_size[0], size or spec.input_size[1:]
        model = keras_impl.get_model(name, weights=weights, classifier_activation=None, input_shape=(h, w, c))
        return export_keras(model, out)
    options = options_from_checkpoint(name, weights) if weights is not None else {}
    torch_model, keras_model = build_pair(name, size, weights=weights, **options)
    if weights is None:
        randomise_torch(torch_model, seed)
    if framework == "torch":
        return export_torch(torch_model, out, size=size)
    transfer_weights(torch_model, keras_model)
    return export_keras(keras_model, out)
