"""Spec, torch and keras summaries side by side: one row per spec layer, mismatches flagged."""

from __future__ import annotations

import numpy as np

import cnnspec
from cnnspec.summary import format_shape


def side_by_side(name: str, size: tuple[int, int] | None = None) -> str:
    from keras_impl import layer_name

    from ..twins import build_pair
    from .compare import comparable_layers

    torch_model, keras_model = build_pair(name, size)
    spec = torch_model.spec
    c = spec.input_size[0]
    h, w = size or spec.input_size[1:]
    analysis = cnnspec.analyse(spec, (h, w), include_aux=False)
    paths = comparable_layers(spec, keras_model)
    torch_shapes, hooks = {}, []
    for p in paths:
        hooks.append(
            torch_model.get_submodule(p).register_forward_hook(
                lambda m, i, o, p=p: torch_shapes.__setitem__(p, tuple(o.shape[1:]))
            )
        )
    import torch

    with torch.no_grad():
        torch_model(torch.zeros(1, c, h, w))
    for hook in hooks:
        hook.remove()
    rows, bad = [], 0
    for p in paths:
        info = analysis.layer(p)
        ks = tuple(keras_model.get_layer(layer_name(p)).output.shape[1:])
        keras_chw = (ks[-1],) + ks[:-1] if len(ks) == 3 else ks
        t_params = sum(x.numel() for x in torch_model.get_submodule(p).parameters(recurse=False))
        k_params = sum(int(np.prod(v.shape)) for v in keras_model.get_layer(layer_name(p)).trainable_weights)
        ok = info.output_shape == torch_shapes.get(p) == keras_chw and info.params == t_params == k_params
        bad += not ok
        rows.append(
            (
                p,
                info.node.kind,
                format_shape(info.output_shape),
                format_shape(torch_shapes.get(p, ())),
                format_shape(ks),
                f"{info.params:,}",
                f"{t_params:,}",
                f"{k_params:,}",
                "" if ok else "MISMATCH",
            )
        )
    header = ("layer", "kind", "spec (C,H,W)", "torch (C,H,W)", "keras (H,W,C)", "spec params", "torch", "keras", "")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{wd}}}" if i < 5 else f"{{:>{wd}}}" for i, wd in enumerate(widths))
    total_k = sum(int(np.prod(v.shape)) for v in keras_model.trainable_weights)
    total_t = sum(x.numel() for x in torch_model.parameters())
    lines = [fmt.format(*header), "-" * (sum(widths) + 2 * len(widths))] + [fmt.format(*r) for r in rows]
    lines.append(f"total params: spec {analysis.total_params:,}  torch {total_t:,}  keras {total_k:,} (trainable)")
    lines.append(
        "all layers agree" if not bad and analysis.total_params == total_t == total_k else f"{bad} layer(s) disagree"
    )
    return "\n".join(lines)
