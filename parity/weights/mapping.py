"""The torch <-> keras weight mapping, derived from the spec (no per-model tables).

For every parameterised spec node (Conv, BatchNorm, Linear) the torch tensors (by state_dict key)
and the keras weights (by layer name = spec path) correspond as follows:

- Conv: torch (out, in/groups, kh, kw) <-> keras (kh, kw, in/groups, out): transpose (2, 3, 1, 0).
- Depthwise conv (groups = in = out channels; Keras' DepthwiseConv2D): torch (C, 1, kh, kw) <->
  keras (kh, kw, C, 1): transpose (2, 3, 0, 1).
- Linear: torch (out, in) <-> keras (in, out): transpose. When the spec says the Linear follows a
  flatten of a (C, H, W) map (``LayerInfo.flatten_from``), torch's inputs are in C, H, W order and
  Keras' in H, W, C order, so the input axis is permuted too.
- BatchNorm: weight, bias, running_mean, running_var <-> gamma, beta, moving_mean,
  moving_variance. torch's ``num_batches_tracked`` has no Keras counterpart (it only matters when
  momentum is None, which no spec uses) and is left as it is on the torch side.
- LayerNorm: weight, bias <-> gamma, beta, as they are.
- Multi-head attention: torch's packed ``in_proj_weight`` (3D, D) holds the q, k and v
  projections as row blocks, in that order, each (out, in); Keras' query/key/value kernels are
  (D, heads, D / heads): block i transposed and its output axis split into heads (head h owns
  outputs h*D/heads ... (h+1)*D/heads - 1, as torch splits them). ``in_proj_bias`` (3D,) splits the
  same way into (heads, D / heads) biases. ``out_proj.weight`` (D, D) transposed is Keras'
  attention_output kernel with its input axis split into heads: (heads, D / heads, D).
- Class token and position embedding: one bare parameter each, keyed by the node's path
  (``class_token``, ``encoder.pos_embedding``), the same (1, T, D) array in both.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass

import numpy as np

import cnnspec
from cnnspec import nodes as n

Shape = tuple[int, ...]
KERAS_AXES = {"conv": (2, 3, 1, 0), "depthwise": (2, 3, 0, 1)}  # torch kernel axes in Keras' order


BLOCKED_COPY_MIN = 1 << 16  # elements: below this numpy's copy is as fast and starts sooner


def contiguous(a: np.ndarray) -> np.ndarray:
    """``np.ascontiguousarray``, through torch's blocked, threaded copy for a large transposed view
    when torch is loaded already (parity's processes have it): VGG19's 25088 x 4096 classifier
    transposes in about half numpy's time. The same values either way."""
    torch = sys.modules.get("torch")
    if torch is None or a.flags.c_contiguous or a.size < BLOCKED_COPY_MIN or min(a.strides, default=0) < 0:
        return np.ascontiguousarray(a)
    with warnings.catch_warnings():  # a read-only source (a memory-mapped file) is only read here
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a).contiguous().numpy()


@dataclass(frozen=True)
class LayerMapping:
    path: str  # spec path = keras layer name = torch module path
    kind: str  # "conv", "depthwise", "linear", "batchnorm", "layernorm", "attention", "parameter"
    torch_keys: tuple[str, ...]  # state_dict keys, in keras weight order (attention: 4 keys, 8 keras weights)
    flatten_from: Shape | None = None  # (C, H, W) when a spatial flatten precedes this Linear
    heads: int = 0  # attention only

    def keras_shapes(self, torch_shapes: list[Shape]) -> list[Shape]:
        """The shapes :meth:`to_keras` gives, without touching data (a plan checks every layer)."""
        if self.kind == "attention":
            (_, d), h = torch_shapes[0], self.heads
            return [(d, h, d // h), (h, d // h)] * 3 + [(h, d // h, d), (d,)]
        out = []
        for key, shape in zip(self.torch_keys, torch_shapes):
            if key.endswith(".weight") and self.kind in ("conv", "depthwise"):
                shape = tuple(shape[i] for i in KERAS_AXES[self.kind])
            elif key.endswith(".weight") and self.kind == "linear":
                shape = tuple(shape[::-1])
            out.append(tuple(shape))
        return out

    def to_keras(self, tensors: list[np.ndarray]) -> list[np.ndarray]:
        """Keras' arrays; a tensor that needs no transpose comes back as it is (not a copy)."""
        if self.kind == "attention":
            return _attention_to_keras(tensors, self.heads)
        out = []
        for key, t in zip(self.torch_keys, tensors):
            if key.endswith(".weight") and self.kind in ("conv", "depthwise"):
                t = t.transpose(KERAS_AXES[self.kind])
            elif key.endswith(".weight") and self.kind == "linear":
                if self.flatten_from is not None:  # (out, c, h, w) to Keras' (h * w * c, out) in one copy
                    c, h, w = self.flatten_from
                    t = contiguous(t.reshape(t.shape[0], c, h, w).transpose(2, 3, 1, 0))
                    t = t.reshape(h * w * c, -1)
                else:
                    t = t.T
            out.append(contiguous(t))
        return out

    def to_torch(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.kind == "attention":
            return _attention_to_torch(arrays)
        out = []
        for key, a in zip(self.torch_keys, arrays):
            if key.endswith(".weight") and self.kind in ("conv", "depthwise"):
                a = a.transpose(np.argsort(KERAS_AXES[self.kind]))
            elif key.endswith(".weight") and self.kind == "linear":
                if self.flatten_from is not None:  # Keras' (h * w * c, out) to (out, c * h * w) in one copy
                    c, h, w = self.flatten_from
                    a = contiguous(a.reshape(h, w, c, -1).transpose(3, 2, 0, 1))
                    a = a.reshape(a.shape[0], -1)
                else:
                    a = a.T
            out.append(contiguous(a))
        return out


def _attention_to_keras(tensors: list[np.ndarray], heads: int) -> list[np.ndarray]:
    in_w, in_b, out_w, out_b = tensors
    d = in_w.shape[1]
    out = []
    for i in range(3):  # q, k, v: row blocks of the packed projection
        out.append(contiguous(in_w[i * d : (i + 1) * d].T.reshape(d, heads, d // heads)))
        out.append(contiguous(in_b[i * d : (i + 1) * d].reshape(heads, d // heads)))
    out.append(contiguous(out_w.T.reshape(heads, d // heads, d)))
    out.append(contiguous(out_b))
    return out


def _attention_to_torch(arrays: list[np.ndarray]) -> list[np.ndarray]:
    d = arrays[0].shape[0]
    in_w = np.concatenate([arrays[2 * i].reshape(d, d).T for i in range(3)])
    in_b = np.concatenate([arrays[2 * i + 1].reshape(d) for i in range(3)])
    return [
        contiguous(in_w),
        in_b,
        contiguous(arrays[6].reshape(d, d).T),
        contiguous(arrays[7]),
    ]


def layer_mappings(spec: cnnspec.ModelSpec, include_aux: bool = True) -> list[LayerMapping]:
    """Every parameterised layer of ``spec`` with its torch keys and conversion, in order."""
    shapes = cnnspec.analyse(spec, include_aux=include_aux).by_path()
    out = []
    for path, node in spec.parameterised(include_aux):
        if isinstance(node, n.Conv):
            keys = (f"{path}.weight",) + ((f"{path}.bias",) if node.bias else ())
            out.append(
                LayerMapping(path, "depthwise" if n.is_depthwise(node, shapes[path].in_features) else "conv", keys)
            )
        elif isinstance(node, n.Linear):
            keys = (f"{path}.weight",) + ((f"{path}.bias",) if node.bias else ())
            out.append(LayerMapping(path, "linear", keys, shapes[path].flatten_from))
        elif isinstance(node, n.BatchNorm):
            keys = tuple(f"{path}.{k}" for k in ("weight", "bias", "running_mean", "running_var"))
            out.append(LayerMapping(path, "batchnorm", keys))
        elif isinstance(node, n.LayerNorm):
            out.append(LayerMapping(path, "layernorm", (f"{path}.weight", f"{path}.bias")))
        elif isinstance(node, n.MultiHeadAttention):
            keys = tuple(f"{path}.{k}" for k in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"))
            out.append(LayerMapping(path, "attention", keys, heads=node.heads))
        elif isinstance(node, n.PARAMETER_NODES):
            out.append(LayerMapping(path, "parameter", (path,)))
    return out
