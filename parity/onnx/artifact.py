"""``export(name, framework, out)``: one ONNX file for users who want the artifact."""

from __future__ import annotations

from .export import ExportInfo, export_keras, export_torch


def export(
    name: str, framework: str, out, weights=None, size: tuple[int, int] | None = None, seed: int = 0
) -> ExportInfo:
    """Exports ``name`` from ``framework`` ("torch" or "keras") to ``out``.

    ``weights``: a torch checkpoint (either framework: it is transferred for keras), a Keras
    ``.weights.h5`` (keras), or None for seeded random weights.
    """
    from cnnbase.atomic import check_writable

    from ..twins import model_to_export

    check_writable(out, (".onnx",))  # before the export, not after it
    model = model_to_export(name, framework, weights, size, seed)
    return export_torch(model, out, size=size) if framework == "torch" else export_keras(model, out)
