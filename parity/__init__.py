"""parity: weights torch <-> keras, output and per-layer comparison, ONNX export and comparison.

>>> from parity.comparison.check import check
>>> result = check("alexnet", size=(96, 96))
>>> result.passed
True

The only package that imports both frameworks, grouped by concept: ``weights`` (the mapping,
copying weights between the twins, converting files, seeded random weights), ``comparison``
(``compare``, ``check``, side by side, Keras backends, plots), ``onnx`` (exports and the four-way
comparison), ``training`` (training steps and the train-curve demonstration), ``fetch``
(published weights fetched, converted for Keras and verified) and ``twins`` (building the pair).
:mod:`parity._frameworks` comes first: it loads torch (and torchvision) before anything loads Keras.
"""

from cnnbase.version import __version__ as __version__

from . import _frameworks  # noqa: F401  (first: torch and torchvision before Keras, see its docstring)
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
