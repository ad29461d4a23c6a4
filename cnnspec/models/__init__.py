"""One spec file per family; importing this package registers every model."""
from . import alexnet, googlenet, lenet, resnet, vgg  # noqa: F401
