"""One spec file per family; importing this package registers every model."""
from . import alexnet, efficientnet, googlenet, lenet, mobilenet, resnet, vgg  # noqa: F401
