"""Rewriting a spec: apply a function to every node and rebuild the tree.

Used to derive variants and, in tests, to break one convention on purpose (an eps, a padding)
and show that a comparison notices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .model import AuxHead, ModelSpec
from .nodes import Node, children_of, with_children


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
