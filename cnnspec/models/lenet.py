"""LeNet-5: LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998.

The 1998 layout on a 32x32 grey image: C1 conv 6@5x5, S2 subsampling, C3 conv 16@5x5, S4
subsampling, C5 conv 120@5x5, F6 84 units, 10 outputs, tanh throughout. Two simplifications
shared by every modern re-implementation, stated here so nobody is surprised: S2/S4 are plain 2x2
average pools (the paper's have a trainable gain and bias) and C3 connects to all 6 input maps
(the paper's sparse connection table has 1,516 weights; full connection has 2,416). The output
layer is a Linear layer, not the paper's Euclidean RBF units.
"""

from ..model import ModelSpec
from ..nodes import AvgPool, Conv, Flatten, Linear, Sequential, Tanh
from ..published import no_published_weights
from ..registry import register


@register("lenet5")
def lenet5(num_classes: int = 10) -> ModelSpec:
    """LeNet-5 (LeCun et al. 1998) on 1x32x32 inputs, 10 classes."""
    features = Sequential(
        name="features",
        children=(
            Conv(out=6, kernel=5),  # C1: 32 -> 28
            Tanh(),
            AvgPool(kernel=2, stride=2),  # S2: 28 -> 14
            Conv(out=16, kernel=5),  # C3: 14 -> 10
            Tanh(),
            AvgPool(kernel=2, stride=2),  # S4: 10 -> 5
            Conv(out=120, kernel=5),  # C5: 5 -> 1
            Tanh(),
        ),
    )
    classifier = Sequential(name="classifier", children=(Linear(out=84), Tanh(), Linear(out=num_classes)))
    return ModelSpec(
        name="lenet5",
        family="lenet",
        paper="LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition",
        input_size=(1, 32, 32),
        features=(features,),
        head=(Flatten(name="flatten"), classifier),
        classifier="classifier.2",
        num_classes=num_classes,
        mean=(0.5,),
        std=(0.5,),
        stages=(
            ("features.0", "features.1", "features.2"),
            ("features.3", "features.4", "features.5"),
            ("features.6", "features.7"),
        ),
        fixed_input=True,
    )


# published weights (cnnspec.published): none, and why
no_published_weights(
    "lenet5",
    (
        "torchvision publishes no LeNet-5 weights; LeNet-5 trains from scratch in minutes (python -m torch_impl "
        "finetune --model lenet5)"
    ),
)
