"""torch_impl: torch.nn models interpreted from cnnspec, with torchvision's state_dict keys.

>>> from torch_impl import resnet18
>>> model = resnet18(num_classes=10).eval()
"""

from typing import Any

from cnnbase.version import __version__ as __version__

from . import models as _models
from .builder import GoogLeNetOutputs, SpecModel, build_node
from .fastpath import bf16_supported, fast_inference
from .features import feature_extractor, features_only
from .models import FACTORIES, get_model, get_model_weights, list_models
from .pretrained import Weights, get_weights
from .weights import read_state_dict, save_state_dict

__all__ = [
    "GoogLeNetOutputs",
    "SpecModel",
    "Weights",
    "bf16_supported",
    "build_node",
    "fast_inference",
    "feature_extractor",
    "features_only",
    "get_weights",
    "read_state_dict",
    "save_state_dict",
    "get_model",
    "get_model_weights",
    "list_models",
    *_models.__all__,
]


def __getattr__(name: str) -> Any:
    """One factory per registered model: ``from torch_impl import vgg16``."""
    try:
        return FACTORIES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
