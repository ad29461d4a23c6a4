"""Intermediate maps the way torchvision's and timm's users take them.

* :func:`features_only` (also ``get_model(name, features_only=True, out_indices=...)`` and every
  factory's keywords): timm's features-only model, an ``nn.Module`` whose forward returns a list of
  NCHW maps, one per level of :func:`cnnspec.feature_levels` that ``out_indices`` selects, with
  timm's ``model.feature_info`` (``channels()``, ``reduction()``, ``module_name()``, ``[i]``).
* :func:`feature_extractor`: the maps of named nodes as a dict, torchvision's
  ``create_feature_extractor`` with ``return_nodes`` given as module names (the per-layer report's
  names, state_dict prefixes) or graph node names (``get_graph_node_names``); a misspelt name is one
  error line naming the closest valid one.

Both are torchvision's ``create_feature_extractor`` (every torch_impl model traces with torch.fx)
with two repairs: a returned map that a later in-place activation would overwrite (a conv before
its ``ReLU(inplace=True)``) is cloned where it is made, and a transformer block's tokens come back
as a map (the class token dropped, the patches on their grid, as timm's ViT). The result is a
``torch.fx.GraphModule`` holding only the modules the maps need (the head is cut away), shared with
the model it was cut from, with the model's state_dict keys; it runs under ``torch.export``.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Sequence

import torch
from torch import fx, nn

import cnnspec
from cnnspec.features import FeatureLevel

from .builder import SpecModel
from .vision import torchvision

_IN_PLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


def features_only(model: SpecModel, out_indices: int | Sequence[int] | None = None) -> fx.GraphModule:
    """timm's ``features_only=True`` on a built model: a module returning the maps of the feature
    levels ``out_indices`` selects (None: all; an int n: the last n; negative indices count from the
    end), as a list, shallow to deep in the order given, with ``.feature_info``.

    >>> from torch_impl import resnet50
    >>> backbone = features_only(resnet50(), out_indices=(1, 2, 3))
    >>> backbone.feature_info.channels()
    [256, 512, 1024]
    """
    if not isinstance(model, SpecModel):
        raise TypeError(f"features_only takes a torch_impl model (SpecModel), received {type(model).__name__}")
    info = cnnspec.feature_info(model.spec, out_indices)
    levels = info.selected
    graph_module, found = _extract(model, [level.module for level in levels])
    for graph, nodes in found.items():
        _set_output(graph, [_as_map(graph, nodes[level.module], level, graph_module) for level in levels])
    graph_module.recompile()
    _keep_attributes(graph_module, feature_info=info, spec=model.spec)
    return graph_module


def feature_extractor(model: nn.Module, names: Sequence[str] | str) -> fx.GraphModule:
    """The outputs of ``names`` as a dict name -> tensor, in the order given: module names
    (``"features.3"``, ``"layer2.1"``, the per-layer report's and state_dict's names; a container
    gives its output) or torchvision's graph node names (``"layer1.0.add"``). Works on any model
    torch.fx traces (torchvision's too). A name the model lacks is one ValueError line naming the
    closest valid name.

    >>> from torch_impl import vgg16
    >>> maps = feature_extractor(vgg16(), ["features.3", "features.8"])(torch.rand(1, 3, 64, 64))
    >>> {name: tuple(m.shape) for name, m in maps.items()}
    {'features.3': (1, 64, 64, 64), 'features.8': (1, 128, 32, 32)}
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"feature_extractor takes a list of node names, received {names!r}")
    graph_module, found = _extract(model, names, _check_names(model, names))
    for graph, nodes in found.items():
        _set_output(graph, {name: _keep(graph, nodes[name], graph_module) for name in names})
    graph_module.recompile()
    return graph_module


def tokens_to_map(tokens: torch.Tensor, prefix: int, rows: int, cols: int) -> torch.Tensor:
    """(N, prefix + rows * cols, D) tokens -> (N, D, rows, cols): the patches' tokens on their grid
    (row-major, as PatchTokens laid them out), the ``prefix`` tokens (the class token) dropped."""
    return tokens[:, prefix:].transpose(1, 2).reshape(tokens.shape[0], -1, rows, cols)


# ----------------------------------------------------------------------------- the graph surgery


def _extract(
    model: nn.Module, names: list[str], nodes: dict[str, list[str]] | None = None
) -> tuple[fx.GraphModule, dict[fx.Graph, dict[str, fx.Node]]]:
    """torchvision's create_feature_extractor for ``names``, and in each of its graphs (training,
    eval) the node each name gives. With the graphs' node names per mode (``nodes``), each name is
    asked for as the node it resolves to, so two names of one node ("layer1", "layer1.1") and a
    repeated name each get it (torchvision gives a node to one query only)."""
    torchvision()  # one clear ImportError where importing it would crash the process
    from torchvision.models.feature_extraction import create_feature_extractor

    asked = {
        mode: {name: _resolve(name, nodes[mode]) if nodes else name for name in names} for mode in ("train", "eval")
    }
    graph_module = create_feature_extractor(
        model,
        train_return_nodes={node: node for node in asked["train"].values()},
        eval_return_nodes={node: node for node in asked["eval"].values()},
        suppress_diff_warning=True,
    )
    found = {}
    for mode, graph in (("train", graph_module.train_graph), ("eval", graph_module.eval_graph)):
        outputs = dict(_output_node(graph).args[0])
        found[graph] = {name: outputs[node] for name, node in asked[mode].items()}
    return graph_module, found


def _keep_attributes(graph_module: fx.GraphModule, **attributes: object) -> None:
    """Sets ``attributes`` on ``graph_module`` so that copy.deepcopy keeps them (a GraphModule's copy
    keeps only what its ``meta`` lists under torch.fx's preserved-attributes key)."""
    for name, value in attributes.items():
        setattr(graph_module, name, value)
    key = getattr(fx.graph_module, "_USER_PRESERVED_ATTRIBUTES_KEY", None)
    if key is not None:
        if not isinstance(getattr(graph_module, "meta", None), dict):
            graph_module.meta = {}  # torchvision's DualGraphModule skips GraphModule.__init__, which sets it
        graph_module.meta.setdefault(key, {}).update(attributes)


def _output_node(graph: fx.Graph) -> fx.Node:
    return next(node for node in reversed(graph.nodes) if node.op == "output")


def _set_output(graph: fx.Graph, value: object) -> None:
    _output_node(graph).args = (value,)
    graph.lint()


def _as_map(graph: fx.Graph, node: fx.Node, level: FeatureLevel, root: nn.Module) -> fx.Node:
    node = _keep(graph, node, root)
    if not level.tokens:
        return node
    with graph.inserting_after(node):
        return graph.call_function(tokens_to_map, (node, level.prefix_tokens, *level.grid))


def _keep(graph: fx.Graph, node: fx.Node, root: nn.Module) -> fx.Node:
    """``node``, or a clone of it made right away when a later in-place op writes into its tensor
    (eager forward hooks see the same overwrite; a clone in the hook is the usual repair)."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    aliases, changed = {node}, True
    while changed:  # an in-place op's output is its first input's tensor
        changed = False
        for n in graph.nodes:
            first = n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None
            if _in_place(n, root) and ((first in aliases) != (n in aliases)):
                aliases |= {n, first}
                changed = True
    writes_later = any(
        _in_place(n, root) and order[n] > order[node] and n.args and n.args[0] in aliases for n in graph.nodes
    )
    if not writes_later:
        return node
    with graph.inserting_after(node):
        return graph.call_method("clone", (node,))


def _in_place(node: fx.Node, root: nn.Module) -> bool:
    if node.op == "call_module":
        return bool(getattr(root.get_submodule(node.target), "inplace", False))
    if node.op == "call_method":
        return node.target.endswith("_") and not node.target.startswith("__")
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return (
            node.target in _IN_PLACE_FUNCTIONS
            or bool(node.kwargs.get("inplace"))
            or (name.endswith("_") and not name.startswith("_"))
        )
    return False


# ----------------------------------------------------------------------------- names


def _check_names(model: nn.Module, names: list[str]) -> dict[str, list[str]]:
    """Each name must match a graph node, or be the module path that nodes sit under, in both modes;
    returns the graphs' node names per mode (torchvision's get_graph_node_names)."""
    torchvision()
    from torchvision.models.feature_extraction import get_graph_node_names

    train, evaluation = get_graph_node_names(model, suppress_diff_warning=True)
    nodes = {"train": train, "eval": evaluation}
    label = getattr(getattr(model, "spec", None), "name", type(model).__name__)
    for name in names:
        present = {mode: _matches(name, nodes) for mode, nodes in (("training", train), ("eval", evaluation))}
        if all(present.values()):
            continue
        if any(present.values()):
            mode = "training" if present["training"] else "eval"
            raise ValueError(
                f"{label} computes {name!r} only in {mode} mode; feature_extractor takes nodes of both modes"
            )
        valid = sorted({*evaluation, *(n for n, _ in model.named_modules() if n and _matches(n, evaluation))})
        closest = difflib.get_close_matches(name, valid, n=1) or difflib.get_close_matches(name, valid, 1, 0.0)
        raise ValueError(
            f"{label} has no node {name!r}; the closest is {closest[0]!r} "
            f"(torchvision.models.feature_extraction.get_graph_node_names(model) lists them)"
        )
    return nodes


def _matches(name: str, nodes: Sequence[str]) -> bool:
    return any(node == name or node.startswith(name + ".") for node in nodes)


def _resolve(name: str, nodes: Sequence[str]) -> str:
    """The node ``name`` gives: itself, or the last node under the module path (its output), as
    torchvision resolves a module name."""
    return next(node for node in reversed(nodes) if node == name or node.startswith(name + "."))
