"""The top-level description of one model: features, head, auxiliary heads and metadata."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .nodes import Linear, Node, Sequential, children_of

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AuxHead:
    """A side classifier fed by the output of the top-level features node ``source``.

    Built only when requested (GoogLeNet's ``aux_logits``) and active only in training, like
    torchvision. Its layers live under ``name`` (``aux1.conv.conv``, ``aux1.fc1``).
    """

    name: str
    source: str
    head: Sequential


@dataclass(frozen=True)
class ModelSpec:
    """One architecture. ``features`` and ``head`` are sequences of named top-level nodes whose
    names are torchvision's attribute names; ``features`` ends at the last feature map (what
    keras.applications returns with ``include_top=False``), ``head`` holds pooling and classifier.

    ``init`` names torchvision's initialisation scheme for the family ("default", "vgg",
    "resnet", "googlenet"); ``stages`` lists the dotted paths of the backbone blocks in order,
    used to unfreeze the last N blocks in transfer learning.
    """

    name: str
    family: str
    paper: str
    input_size: tuple[int, int, int]  # (channels, height, width) the model is built for
    features: tuple[Node, ...]
    head: tuple[Node, ...]
    classifier: str  # dotted path of the final Linear layer
    num_classes: int
    aux_heads: tuple[AuxHead, ...] = ()
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    init: str = "default"
    stages: tuple[tuple[str, ...], ...] = ()  # backbone blocks, each a tuple of dotted paths
    fixed_input: bool = False  # True when the head has no adaptive pool (only input_size works)
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        top = [n.name for n in self.features + self.head] + [a.name for a in self.aux_heads]
        if any(not n for n in top):
            raise ValueError(f"{self.name}: every top-level node needs a name, got {top}")
        if len(set(top)) != len(top):
            raise ValueError(f"{self.name}: duplicate top-level names in {top}")
        if not isinstance(self.node(self.classifier), Linear):
            raise ValueError(f"{self.name}: classifier {self.classifier!r} is not a Linear node")

    # ------------------------------------------------------------------ navigation
    def walk(self, include_aux: bool = True) -> Iterator[tuple[str, Node]]:
        """Every node with its dotted path, depth first, in execution order."""
        roots = list(self.features)
        if include_aux:
            roots += [a.head for a in self.aux_heads]
        roots += list(self.head)
        for root in roots:
            yield from _walk(root, root.name)

    def node(self, path: str) -> Node:
        for p, n in self.walk():
            if p == path:
                return n
        raise KeyError(f"{self.name} has no node {path!r}")

    def parameterised(self, include_aux: bool = True) -> list[tuple[str, Node]]:
        """The layers that own weights, in order: what a weight transfer walks."""
        from .nodes import PARAMETERISED

        return [(p, n) for p, n in self.walk(include_aux) if isinstance(n, PARAMETERISED)]


def _walk(node: Node, path: str) -> Iterator[tuple[str, Node]]:
    yield path, node
    for child in children_of(node):
        yield from _walk(child, f"{path}.{child.name}")
