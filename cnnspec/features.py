"""Feature pyramids, timm's way and framework-free: which maps a backbone hands to a detector or a
segmentation head, read from the spec.

>>> import cnnspec
>>> info = cnnspec.feature_info(cnnspec.get("resnet50"))
>>> info.channels(), info.reduction(), info.module_name()
([64, 256, 512, 1024, 2048], [2, 4, 8, 16, 32], ['relu', 'layer1', 'layer2', 'layer3', 'layer4'])

:func:`feature_levels` gives one :class:`FeatureLevel` per level (``num_chs``, ``reduction``: the
input stride, ``module``: the dotted path whose output it is, torchvision's module name);
:class:`FeatureInfo` holds them with timm's accessors (``channels()``, ``reduction()``,
``module_name()``, ``info[i]["num_chs"]``) for the levels ``out_indices`` selects. The rule is in
:func:`feature_levels`; no model has a hand-written table. Each builder cuts its model at these paths.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

from .analysis import analyse
from .model import ModelSpec
from .nodes import (
    PARAMETERISED,
    AvgPool,
    Concat,
    Conv,
    Gate,
    MaxPool,
    Node,
    Residual,
    ResidualChain,
    Sequential,
    children_of,
)


@dataclass(frozen=True)
class FeatureLevel:
    """One level of a feature pyramid: the output of ``module``, ``num_chs`` channels at 1 /
    ``reduction`` of the input's size. ``tokens`` marks a transformer block's output, tokens (T, D)
    that a builder hands back as a (D, H / reduction, W / reduction) map: the first ``prefix_tokens``
    (the class token) dropped and the rest laid on their ``grid`` (rows, columns) of patches."""

    num_chs: int
    reduction: int
    module: str
    index: int
    tokens: bool = False
    prefix_tokens: int = 0
    grid: tuple[int, int] = (0, 0)

    def as_dict(self) -> dict:
        """timm's entry: ``num_chs``, ``reduction``, ``module``, ``index``."""
        return {k: v for k, v in asdict(self).items() if k in ("num_chs", "reduction", "module", "index")}


def feature_levels(spec: ModelSpec) -> tuple[FeatureLevel, ...]:
    """Every level of ``spec``'s feature pyramid, shallow to deep, by one rule:

    * the candidates are the backbone blocks ``spec.stages`` lists, in order (the top-level
      features nodes when it lists none); those before the first learned layer are not levels
      (GoogLeNet's ``transform_input`` rescales the image itself);
    * a trailing block of only pointwise convolutions (1x1, stride 1) widens the last map for the
      classifier and is left out, as timm leaves out its ``conv_head`` (MobileNetV2's 1280-channel
      ``features.18``, EfficientNet's ``features.8``);
    * a map level is the **last candidate at each reduction** (input stride, the product of the
      strides of every conv and pool on the way): the stem's activation before ResNet's max pool,
      each stage's last block, and for the plain stacks (LeNet, AlexNet, VGG) the map right before
      each pooling plus the last pooled map, which is timm's VGG pyramid;
    * once a map has become tokens (ViT), every transformer block (``ResidualChain``) is a level of
      its own at the patch stride, as timm's ViT: its tokens without the class token, on the grid.

    Channels and the token grid come from :func:`cnnspec.analyse` at the spec's input size. This
    equals timm's ``feature_info`` for ResNet, MobileNetV2, EfficientNet-B0 and VGG in channels
    and reductions (the module names are torchvision's paths here).
    """
    shapes = analyse(spec, include_aux=False).by_path()
    strides = _output_strides(spec)
    candidates = [path for stage in spec.stages for path in stage] or [node.name for node in spec.features]
    learned = [any(isinstance(n, PARAMETERISED) for n in _subtree(spec.node(p))) for p in candidates]
    if True in learned:
        candidates = candidates[learned.index(True) :]
    while candidates and _pointwise_only(spec.node(candidates[-1])):
        candidates.pop()
    grid, prefix, picked = (0, 0), 0, []
    for position, path in enumerate(candidates):
        shape, node = shapes[path].output_shape, spec.node(path)
        if len(shape) == 3:
            grid = shape[1:]
            if strides[path] not in {strides[p] for p in candidates[position + 1 :]}:
                picked.append((shape[0], strides[path], path, False, 0))
        elif len(shape) == 2 and isinstance(node, ResidualChain):
            prefix = shape[0] - grid[0] * grid[1]
            picked.append((shape[1], strides[path], path, True, prefix))
    return tuple(
        FeatureLevel(chs, reduction, path, i, tokens, prefix, tuple(grid) if tokens else (0, 0))
        for i, (chs, reduction, path, tokens, prefix) in enumerate(picked)
    )


def feature_info(spec: ModelSpec, out_indices: int | Sequence[int] | None = None) -> FeatureInfo:
    """The pyramid of ``spec`` as timm's ``model.feature_info``, ``out_indices`` selecting levels."""
    return FeatureInfo(feature_levels(spec), out_indices, model=spec.name)


def take_indices(count: int, out_indices: int | Sequence[int] | None, model: str = "the model") -> tuple[int, ...]:
    """timm's ``out_indices``, as absolute level numbers: None takes every level, an int ``n`` the
    last n, a sequence those levels (negative ones count from the end). Anything else is one
    ValueError line that names the valid range."""
    valid = f"{model} has {count} feature levels: out_indices takes indices from {-count} to {count - 1}"
    if out_indices is None:
        return tuple(range(count))
    if isinstance(out_indices, int) and not isinstance(out_indices, bool):
        if not 0 < out_indices <= count:
            raise ValueError(f"{valid}, or an int n from 1 to {count} for the last n; received {out_indices!r}")
        return tuple(range(count - out_indices, count))
    try:
        indices = tuple(out_indices)
    except TypeError:
        raise ValueError(f"{valid} (a tuple), received {out_indices!r}") from None
    bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int) or not -count <= i < count]
    if bad or not indices:
        raise ValueError(f"{valid}, received out_indices={out_indices!r}")
    return tuple(i % count for i in indices)


class FeatureInfo:
    """timm's ``FeatureInfo``: ``len()`` and ``info[i]`` (a dict: ``num_chs``, ``reduction``,
    ``module``, ``index``) cover every level; ``channels()``, ``reduction()``, ``module_name()``
    and ``get(key)`` answer for the levels in ``out_indices`` (one level or a list with ``idx=``)."""

    def __init__(
        self, levels: Sequence[FeatureLevel], out_indices: int | Sequence[int] | None = None, model: str = "the model"
    ) -> None:
        self.levels = tuple(levels)
        self.model = model
        self.out_indices = take_indices(len(self.levels), out_indices, model)
        self.info = [level.as_dict() for level in self.levels]

    def from_other(self, out_indices: int | Sequence[int] | None) -> FeatureInfo:
        return FeatureInfo(self.levels, out_indices, self.model)

    @property
    def selected(self) -> tuple[FeatureLevel, ...]:
        """The levels of ``out_indices``, in that order: what a features-only model returns."""
        return tuple(self.levels[i] for i in self.out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None):
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, (tuple, list)):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None):
        pick = lambda i: dict(self.info[i]) if keys is None else {k: self.info[i][k] for k in keys}  # noqa: E731
        if idx is None:
            return [pick(i) for i in self.out_indices]
        if isinstance(idx, (tuple, list)):
            return [pick(i) for i in idx]
        return pick(idx)

    def channels(self, idx: int | Sequence[int] | None = None):
        """The levels' channels (timm's ``num_chs``)."""
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None):
        """The levels' input strides."""
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None):
        """The dotted paths (torchvision's module names) whose outputs the levels are."""
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo({self.model}: {self.info}, out_indices={self.out_indices})"


def _subtree(node: Node) -> Iterator[Node]:
    yield node
    for child in children_of(node):
        yield from _subtree(child)


def _pointwise_only(node: Node) -> bool:
    """A block whose convolutions are all 1x1 with stride 1 and that pools nothing (a head's widening)."""
    nodes = list(_subtree(node))
    convs = [n for n in nodes if isinstance(n, Conv)]
    spatial = any(isinstance(n, (MaxPool, AvgPool)) for n in nodes)
    return bool(convs) and not spatial and all(c.kernel == (1, 1) and c.stride == (1, 1) for c in convs)


def _output_strides(spec: ModelSpec) -> dict[str, int]:
    """The input stride of every features node's output (rows: the specs' strides are square)."""
    strides: dict[str, int] = {}

    def visit(node: Node, path: str, stride: int) -> int:
        if isinstance(node, Sequential):
            for child in node.children:
                stride = visit(child, f"{path}.{child.name}", stride)
            out = stride
        elif isinstance(node, Concat):
            out = max(visit(b, f"{path}.{b.name}", stride) for b in node.branches)
        elif isinstance(node, Residual):
            out = stride
            for child in node.body:
                out = visit(child, f"{path}.{child.name}", out)
            if node.shortcut is not None:
                visit(node.shortcut, f"{path}.{node.shortcut.name}", stride)
            if node.post is not None:
                out = visit(node.post, f"{path}.{node.post.name}", out)
        elif isinstance(node, (Gate, ResidualChain)):  # the output keeps the input's grid
            for child in children_of(node):
                visit(child, f"{path}.{child.name}", stride)
            out = stride
        elif isinstance(node, (Conv, MaxPool, AvgPool)):
            out = stride * node.stride[0]
        else:
            out = stride
        strides[path] = out
        return out

    stride = 1
    for node in spec.features:
        stride = visit(node, node.name, stride)
    return strides
