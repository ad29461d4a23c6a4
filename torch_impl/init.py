"""torchvision's weight initialisation in torch: the draws :mod:`cnnspec.init` describes, applied
in module order with torch's own functions (``trunc_normal_``, ``normal_``, ``uniform_``), so a
scheme is written once for both frameworks."""

from __future__ import annotations

import torch
from torch import nn

import cnnspec
from cnnspec import init as spec_init


def apply_draw(tensor: torch.Tensor, draw: spec_init.Draw) -> None:
    """Draws ``tensor``'s values in place as ``draw`` says."""
    if draw.kind == "constant":
        nn.init.constant_(tensor, draw.scale)
    elif draw.kind == "uniform":
        nn.init.uniform_(tensor, -draw.scale, draw.scale)
    elif draw.truncate is not None:
        nn.init.trunc_normal_(tensor, mean=0.0, std=draw.scale, a=-draw.truncate, b=draw.truncate)
    else:
        nn.init.normal_(tensor, 0.0, draw.scale)


@torch.no_grad()
def initialise(model: nn.Module, scheme: str) -> None:
    """Re-draws every parameter the scheme sets (``model.spec``'s nodes, in module order); the
    ones it leaves to torch's layer defaults keep what the constructors drew."""
    spec_init.check_scheme(scheme)
    spec = model.spec
    widths = {path: info.in_features for path, info in cnnspec.analyse(spec).by_path().items()}
    for key, draw in spec_init.draws(spec, widths, scheme):
        if not draw.at_construction:
            apply_draw(model.get_parameter(key), draw)
