"""A summary table of a spec (layer, kind, output shape, params, MACs), like torchsummary."""

from __future__ import annotations

from .analysis import Analysis, analyse
from .model import ModelSpec


def format_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def summary(spec: ModelSpec, input_size: tuple[int, int] | None = None, containers: bool = False) -> str:
    """The table as text. Leaves only by default; ``containers=True`` adds block rows."""
    result: Analysis = analyse(spec, input_size)
    rows = [
        (layer.path, layer.node.kind, format_shape(layer.output_shape), f"{layer.params:,}", f"{layer.macs:,}")
        for layer in result.layers
        if containers or not layer.is_container
    ]
    header = ("layer", "kind", "output shape (C, H, W) or (T, D)", "params", "MACs")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    line = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    rule = "-" * (sum(widths) + 8)
    size = "x".join(map(str, result.input_shape[1:]))
    out = [f"{spec.name}  input {format_shape(result.input_shape)}  ({spec.paper})", rule, line.format(*header), rule]
    out += [line.format(*r) for r in rows]
    out += [
        rule,
        f"total params: {result.total_params:,}",
        f"total MACs at {size}: {result.total_macs:,} ({result.total_macs / 1e9:.3f} G)",
        f"output shape: {format_shape(result.output_shape)}",
    ]
    return "\n".join(out)
