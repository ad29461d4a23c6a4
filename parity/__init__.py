"""parity: weights torch <-> keras, output and per-layer comparison, ONNX export and comparison.

>>> from parity.comparison.check import check
>>> result = check("alexnet", size=(96, 96))
>>> result.passed
True

The only package that imports both frameworks. It loads torch (and torchvision, when installed)
before Keras: torchvision's native extension segfaults when TensorFlow's libraries loaded first.
"""

import torch  # noqa: F401  (import order matters, see above)

from torch_impl.vision import order_problem

if not order_problem():  # after tensorflow it would crash: torch_impl.vision then says so where it is needed
    try:
        import torchvision  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
from .comparison.compare import Figures, Report, compare, figures
from .weights.copying import TransferError, transfer_weights
from .weights.mapping import LayerMapping, layer_mappings
from .weights.randomise import randomise_keras, randomise_torch

__all__ = [
    "Figures",
    "LayerMapping",
    "Report",
    "TransferError",
    "compare",
    "figures",
    "layer_mappings",
    "randomise_keras",
    "randomise_torch",
    "transfer_weights",
]
