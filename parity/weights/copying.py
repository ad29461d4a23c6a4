"""``transfer_weights(src, dst)``: torch_impl <-> keras_impl, every parameter and BatchNorm statistic.

The direction follows the argument types. The torch model's spec decides the mapping; the keras
model is checked against it layer by layer *before* anything is written, so a mismatched pair
(another model, another number of classes) raises an error naming the first bad layer and
leaves the destination untouched.
"""

from __future__ import annotations

import numpy as np

from .mapping import LayerMapping, layer_mappings


class TransferError(ValueError):
    """The two models do not correspond; the message names the first layer that does not fit."""


def _is_torch(model) -> bool:
    try:
        import torch

        return isinstance(model, torch.nn.Module)
    except ImportError:  # pragma: no cover
        return False


def _is_keras(model) -> bool:
    import keras

    return isinstance(model, keras.Model)


def transfer_weights(src, dst) -> int:
    """Copies all weights from ``src`` to ``dst`` (one torch_impl model, one keras_impl model).

    Returns the number of layers copied. If the keras model was built with ``include_top=False``
    (none of the head's layers exist), only the backbone is copied.
    """
    if _is_torch(src) and _is_keras(dst):
        return _torch_to_keras(src, dst)
    if _is_keras(src) and _is_torch(dst):
        return _keras_to_torch(src, dst)
    raise TypeError(
        "transfer_weights needs one torch_impl model and one keras_impl model, "
        f"received {type(src).__name__} -> {type(dst).__name__}"
    )


def _plan(torch_model, keras_model) -> list[tuple[LayerMapping, object]]:
    """Pairs each mapping with its keras layer; raises TransferError at the first mismatch."""
    spec = getattr(torch_model, "spec", None)
    if spec is None:
        raise TypeError(f"{type(torch_model).__name__} is not a torch_impl model (it has no .spec)")
    has_aux = any(name.startswith(a.name + ".") for a in spec.aux_heads for name in torch_model.state_dict())
    mappings = layer_mappings(spec, include_aux=has_aux)
    from keras_impl import layer_name

    by_name: dict[str, object] = {layer.name: layer for layer in keras_model.layers}
    keras_layers = {m.path: by_name[layer_name(m.path)] for m in mappings if layer_name(m.path) in by_name}
    head_paths = {
        m.path
        for m in mappings
        if m.path.split(".")[0] in {h.name for h in spec.head} | {a.name for a in spec.aux_heads}
    }
    if head_paths and not (head_paths & set(keras_layers)):
        mappings = [m for m in mappings if m.path not in head_paths]  # include_top=False
    state = torch_model.state_dict()
    plan = []
    for m in mappings:
        layer = keras_layers.get(m.path)
        if layer is None:
            raise TransferError(
                f"{spec.name}: layer {m.path!r} of the torch model has no keras layer {layer_name(m.path)!r} "
                f"in {keras_model.name!r}"
            )
        torch_shapes = [tuple(state[k].shape) for k in m.torch_keys]
        expected = m.keras_shapes(torch_shapes)
        actual = [tuple(w.shape) for w in layer.weights]
        if expected != actual:
            raise TransferError(
                f"{spec.name}: layer {m.path!r} does not fit: torch gives keras shapes {expected}, "
                f"the keras layer has {actual}"
            )
        plan.append((m, layer))
    # every weighted keras layer must be covered, or the pair is not the same model
    covered = {id(layer) for _, layer in plan}
    extra = [lyr.name for lyr in keras_model.layers if lyr.weights and id(lyr) not in covered]
    if extra:
        raise TransferError(f"{spec.name}: keras layer {extra[0]!r} has weights but no counterpart in the torch model")
    return plan


def _torch_to_keras(torch_model, keras_model) -> int:
    plan = _plan(torch_model, keras_model)
    # copies: torch's .numpy() shares the tensor's memory, and jax on CPU may keep a numpy
    # buffer as it is, so without a copy a later in-place torch update (an optimizer step) would
    # silently change the Keras weights too (seen on jax: biases moved with torch's SGD step)
    state = {k: v.detach().cpu().numpy() for k, v in torch_model.state_dict().items()}
    converted = []
    for m, layer in plan:
        sources = [state[k] for k in m.torch_keys]
        arrays = m.to_keras(sources)  # transposed ones are fresh; the others are torch's memory: copied
        converted.append((layer, [a.copy() if any(np.may_share_memory(a, s) for s in sources) else a for a in arrays]))
    for layer, arrays in converted:
        layer.set_weights(arrays)
    return len(converted)


def _keras_to_torch(keras_model, torch_model) -> int:
    import torch

    plan = _plan(torch_model, keras_model)
    state = torch_model.state_dict()
    updates = {}
    for m, layer in plan:
        arrays = m.to_torch([np.asarray(w) for w in layer.get_weights()])
        for key, a in zip(m.torch_keys, arrays):
            updates[key] = torch.from_numpy(a).to(state[key].dtype)
    with torch.no_grad():
        for key, value in updates.items():
            state[key].copy_(value)
    return len(plan)
