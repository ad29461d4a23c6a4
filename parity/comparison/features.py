"""``compare_features(torch_model, keras_model, inputs)``: the two models' feature pyramids, level
by level (timm's ``features_only`` cut of each: ``torch_impl.features_only`` and
``keras_impl.features.features_only``), the heart of ``python -m parity check NAME --features``.

The report's ``layers`` are the levels (named by their module path, torch's maps in NHWC) and its
``output`` the worst of them; it passes when every level does, and ``first_divergence`` names the
shallowest level that fails.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Figures, Report, _check_inputs, figures, strict_float32, to_nhwc


def compare_features(
    torch_model,
    keras_model,
    inputs: np.ndarray,
    out_indices: int | Sequence[int] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    label: str = "torch -> keras features",
    keras_features=None,
) -> Report:
    """Compares the feature maps of a torch_impl model and its keras_impl twin on ``inputs`` (NCHW
    float32). ``keras_features``: an already cut Keras features model to compare instead of
    cutting ``keras_model`` (its outputs taken as the levels', in order)."""
    import keras
    import torch

    from keras_impl.features import features_only as keras_features_only
    from torch_impl.features import features_only as torch_features_only

    spec = torch_model.spec
    inputs = _check_inputs(spec, inputs)
    strict_float32()
    torch_features = torch_features_only(torch_model, out_indices).eval()
    if keras_features is None:
        keras_features = keras_features_only(keras_model, out_indices, spec=spec)
    levels = torch_features.feature_info.selected
    with torch.no_grad():
        device = next(torch_model.parameters()).device
        reference = [
            to_nhwc(m.detach().cpu().float().numpy()) for m in torch_features(torch.from_numpy(inputs).to(device))
        ]
    outputs = keras_features(to_nhwc(inputs), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    ours = [np.asarray(keras.ops.convert_to_numpy(o)) for o in outputs]
    if len(ours) != len(reference):
        ours = (ours + [np.zeros(0)] * len(reference))[: len(reference)]
    per_level = [figures(level.module, ref, k, rtol, atol) for level, ref, k in zip(levels, reference, ours)]
    return Report(spec.name, label, _worst(per_level), per_level, rtol, atol)


def _worst(levels: list[Figures]) -> Figures:
    """One line for the whole pyramid: the largest errors, finite and passed only if every level is."""
    worst = max(levels, key=lambda f: (not f.passed, f.max_rel if f.max_rel == f.max_rel else float("inf")))
    return Figures(
        "features",
        worst.shape,
        max(f.max_abs for f in levels),
        worst.scale,
        max(f.max_rel for f in levels),
        all(f.finite for f in levels),
        passed=all(f.passed for f in levels),
    )
