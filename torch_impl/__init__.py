"""torch_impl: torch.nn models interpreted from cnnspec, with torchvision's state_dict keys.

>>> from torch_impl import resnet18
>>> model = resnet18(num_classes=10).eval()
"""
from .builder import GoogLeNetOutputs, SpecModel, build_node
from .models import (
    alexnet,
    alexnet_original,
    get_model,
    googlenet,
    lenet5,
    list_models,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
)
from .fastpath import bf16_supported, fast_inference
from .pretrained import Weights, get_weights
from .weights import read_state_dict, save_state_dict

__all__ = [
    "GoogLeNetOutputs", "SpecModel", "Weights", "alexnet", "alexnet_original", "bf16_supported", "build_node", "fast_inference", "get_model", "get_weights", "googlenet",
    "lenet5", "list_models", "read_state_dict", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "save_state_dict", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
]
