"""Rewriting a spec: apply a function to every node and rebuild the tree.

Used to derive variants and, in tests, to break one convention on purpose (an eps, a padding)
and show that a comparison notices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .model import AuxHead, ModelSpec
from .nodes import Linear, Node, children_of, with_children


def map_nodes(spec: ModelSpec, fn: Callable[[str, Node], Node]) -> ModelSpec:
    """A new spec where every node is replaced by ``fn(path, node)`` (children first)."""

    def visit(node: Node, path: str) -> Node:
        children = children_of(node)
        if children:
            node = with_children(node, tuple(visit(c, f"{path}.{c.name}") for c in children))
        return fn(path, node)

    return replace(
        spec,
        features=tuple(visit(n, n.name) for n in spec.features),
        head=tuple(visit(n, n.name) for n in spec.head),
        aux_heads=tuple(AuxHead(a.name, a.source, visit(a.head, a.name)) for a in spec.aux_heads),  # type: ignore[arg-type]
    )


def replace_at(spec: ModelSpec, path: str, **changes) -> ModelSpec:
    """A new spec with the fields of the node at ``path`` changed, e.g. ``eps=1e-3``."""
    spec.node(path)  # raises KeyError naming the spec if the path does not exist
    return map_nodes(spec, lambda p, n: replace(n, **changes) if p == path else n)


def narrow_head(spec: ModelSpec, width: int = 64) -> ModelSpec:
    """``spec`` with every Linear but the classifier ``width`` wide: AlexNet's and VGG's 4096-wide
    hidden layers are 90% of their weights, so a quick export or build keeps every op of the family
    at a few MB."""
    return map_nodes(
        spec, lambda path, n: replace(n, out=width) if isinstance(n, Linear) and path != spec.classifier else n
    )
