"""cnnspec: framework-free architecture specs of the classic CNNs.

>>> import cnnspec
>>> spec = cnnspec.get("vgg16", num_classes=10)
>>> cnnspec.analyse(spec).total_params
134301514

This package imports no deep-learning framework: torch_impl and keras_impl interpret its specs.
"""

from cnnbase.version import __version__ as __version__

from . import models as _models  # noqa: F401  (registers every model)
from .analysis import Analysis, LayerInfo, ShapeError, analyse
from .edit import map_nodes, replace_at
from .features import FeatureInfo, FeatureLevel, feature_info, feature_levels
from .model import IMAGENET_MEAN, IMAGENET_STD, AuxHead, ModelSpec
from .nodes import (
    GELU,
    AdaptiveAvgPool,
    AvgPool,
    BatchNorm,
    ChannelAffine,
    ClassToken,
    Concat,
    Conv,
    Dropout,
    Flatten,
    Gate,
    LayerNorm,
    Linear,
    LocalResponseNorm,
    MaxPool,
    MultiHeadAttention,
    Node,
    PatchTokens,
    PositionEmbedding,
    ReLU,
    ReLU6,
    Residual,
    ResidualChain,
    SelectToken,
    Sequential,
    Sigmoid,
    SiLU,
    StochasticDepth,
    Tanh,
    children_of,
)
from .published import EvalTransform, PublishedWeights, categories, published_weights, register_weights, weights_names
from .registry import get, names, options, options_for_size, register
from .summary import summary

__all__ = [
    "AdaptiveAvgPool",
    "Analysis",
    "AuxHead",
    "AvgPool",
    "BatchNorm",
    "ChannelAffine",
    "ClassToken",
    "Concat",
    "Conv",
    "Dropout",
    "EvalTransform",
    "FeatureInfo",
    "FeatureLevel",
    "Flatten",
    "GELU",
    "Gate",
    "LayerNorm",
    "MultiHeadAttention",
    "PatchTokens",
    "PositionEmbedding",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LayerInfo",
    "Linear",
    "LocalResponseNorm",
    "MaxPool",
    "ModelSpec",
    "Node",
    "PublishedWeights",
    "ReLU",
    "ReLU6",
    "Residual",
    "ResidualChain",
    "SelectToken",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "SiLU",
    "StochasticDepth",
    "Tanh",
    "analyse",
    "categories",
    "children_of",
    "feature_info",
    "feature_levels",
    "get",
    "map_nodes",
    "names",
    "replace_at",
    "options",
    "options_for_size",
    "published_weights",
    "register",
    "register_weights",
    "summary",
    "weights_names",
]
