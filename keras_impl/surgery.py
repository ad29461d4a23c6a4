"""Transfer-learning surgery on a keras_impl model: a new classifier, a frozen backbone, partial
unfreezing, and the optimizer with a lower learning rate for pretrained layers. The Keras twin of
``torch_impl.surgery``; which layers train in each mode is the fine-tuning core's decision
(``cnntune.policy.trained_paths``). The same three words, used the same way:

- the *classifier* is the layer at the spec's ``classifier`` path (``fc``, ``classifier_6``): the
  only part :func:`replace_head` replaces and the only part feature extraction trains;
- the *head* is the spec's head (pooling, flatten, classifier; for VGG and AlexNet also the
  pretrained fc6/fc7, which feature extraction keeps frozen);
- the *backbone* is everything that is not the classifier.

>>> from keras_impl import resnet18
>>> from keras_impl.surgery import replace_head, freeze_backbone, make_optimizer
>>> model = freeze_backbone(replace_head(resnet18(), num_classes=5))
>>> model.compile(make_optimizer(model, lr=1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

The spec is recovered from the model's name (keras_impl names every model after its spec, and
:func:`replace_head` keeps that name). Keras layer names are spec paths with underscores; the
mapping back goes through the spec (``features.1`` never matches ``features.10``), and the helper
layers ``<path>_pad`` (explicit padding) and ``<block>_add`` (residual sum) belong to their node.

Frozen BatchNorm: in Keras 3 a BatchNormalization whose ``trainable`` is False runs in inference
mode (moving statistics used, never updated) even inside ``fit``, which is what a frozen backbone
needs and what torch_impl gets with its eval-mode hook. A frozen Dropout, however, still drops
in training; and ``model(x, training=False)`` recorded in a functional graph is overridden by the
outer ``training=True`` in Keras 3. :class:`InferenceOnly` wraps a model so that it always runs in
inference mode: ``keras_impl.finetune`` uses it for the frozen backbone of feature extraction.

This module imports no deep-learning framework besides Keras: it runs on every Keras backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import layers

import cnnspec
from cnntune.policy import check_head, check_rates, trained_paths, under

from .builder import layer_name
from .optimizers import TorchAdam

MLP_PARTS = 4  # Dense, BatchNormalization, ReLU, Dense: layers <classifier>_0 .. <classifier>_3


# ----------------------------------------------------------------------------- spec <-> layers


def spec_of(model: keras.Model) -> cnnspec.ModelSpec:
    """The spec behind a keras_impl model, found by its name (``model.name == spec.name``)."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"expected a keras_impl model (keras.Model from keras_impl.get_model), received {type(model).__name__}"
        )
    try:
        return cnnspec.get(model.name)
    except KeyError:
        raise ValueError(
            f"model {model.name!r} is not named after a keras_impl spec (expected one of "
            f"{', '.join(cnnspec.names())}); "
            "build it with keras_impl.get_model(name) and keep its name"
        ) from None


def layer_paths(spec: cnnspec.ModelSpec) -> dict[str, str]:
    """Keras layer name -> the spec path it belongs to, helper layers included.

    Built forwards from the spec (every path, with its ``_pad``/``_add`` helpers, and the MLP head
    layers ``<classifier>.0..3`` that :func:`replace_head` may add), so an underscore in a name is
    never parsed back into a dot.
    """
    owners: dict[str, str] = {}
    paths = [p for p, _ in spec.walk()] + [f"{spec.classifier}.{i}" for i in range(MLP_PARTS)]
    for path in paths:
        for name in (layer_name(path), layer_name(path) + "_pad", layer_name(path) + "_add"):
            if owners.setdefault(name, path) != path:
                raise ValueError(
                    f"{spec.name}: keras layer name {name!r} would belong to both {owners[name]!r} and {path!r}"
                )
    return owners


def _owner(model: keras.Model, owners: dict[str, str], layer: layers.Layer) -> str | None:
    """The spec path of ``layer``; None for weightless layers outside the spec (the InputLayer,
    include_top=False pooling); a layer with weights that the spec does not know is an error."""
    path = owners.get(layer.name)
    if path is None and layer.weights:
        raise ValueError(
            f"layer {layer.name!r} of {model.name} has weights but no spec path; transfer works on keras_impl "
            "models only"
        )
    return path


def classifier_layers(model: keras.Model) -> list[layers.Layer]:
    """The layers of the classifier, in call order: one Dense, or the MLP head's four layers."""
    spec = spec_of(model)
    owners = layer_paths(spec)
    found = [lyr for lyr in model.layers if lyr.name in owners and under(owners[lyr.name], [spec.classifier])]
    if not found:
        raise ValueError(
            f"{model.name} has no classifier layer {layer_name(spec.classifier)!r}: was it built with "
            "include_top=False?"
        )
    return found


# ----------------------------------------------------------------------------- surgery


def replace_head(model: keras.Model, num_classes: int, hidden: int | None = None) -> keras.Model:
    """A new functional model where the classifier Dense is replaced by a fresh ``Dense(num_classes)``
    (same layer name) or, with ``hidden``, by Dense-BatchNorm-ReLU-Dense (layers
    ``<classifier>_0`` .. ``<classifier>_3``, torch_impl's ``MLPHead`` keys). It outputs logits
    (no softmax: train with ``from_logits=True``).

    Every other layer is shared with ``model``, weights included (training one trains the other);
    the name stays the spec's. GoogLeNet's auxiliary outputs, if built, are kept as they are.
    """
    spec = spec_of(model)
    check_head(num_classes, hidden)
    old = classifier_layers(model)
    x = old[0].input
    base = layer_name(spec.classifier)
    if hidden is None:
        head = [layers.Dense(num_classes, name=base)]
    else:
        # BatchNorm1d's torch defaults written out (Keras' own are eps 1e-3, momentum 0.99)
        head = [
            layers.Dense(hidden, name=f"{base}_0"),
            layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{base}_1"),
            layers.ReLU(name=f"{base}_2"),
            layers.Dense(num_classes, name=f"{base}_3"),
        ]
    for layer in head:
        x = layer(x)
    replaced = old[-1].output
    outputs = [x if out is replaced else out for out in model.outputs]
    if not any(out is replaced for out in model.outputs):
        raise ValueError(f"{model.name}: the classifier {base!r} does not produce one of the model's outputs")
    return keras.Model(model.inputs, outputs[0] if len(outputs) == 1 else outputs, name=model.name)


def set_trainable(model: keras.Model, prefixes: Sequence[str]) -> keras.Model:
    """Layers under the spec paths ``prefixes`` train (``cnntune.policy.trained_paths`` says which),
    all others are frozen (a frozen BatchNorm runs in inference mode). Recompile after."""
    spec = spec_of(model)
    owners = layer_paths(spec)
    model.trainable = True  # Keras propagates this to every layer; each is then set below
    for layer in model.layers:
        path = _owner(model, owners, layer)
        layer.trainable = path is not None and under(path, prefixes)
    return model


def freeze_backbone(model: keras.Model) -> keras.Model:
    """Feature extraction: only the classifier trains; every other layer has ``trainable=False``,
    so the backbone's BatchNorm layers keep (and use) their moving statistics. Recompile after."""
    return set_trainable(model, trained_paths(spec_of(model), "feature-extract"))


def unfreeze(model: keras.Model, last_n_blocks: int | None = None) -> keras.Model:
    """Fine-tuning: ``None`` makes every layer trainable; ``N`` the last N entries of the spec's
    ``stages`` plus its head (for ResNet: ``layer4`` and ``fc`` when N=1), the rest frozen as in
    :func:`freeze_backbone`; ``0`` is the head alone. Recompile after."""
    return set_trainable(model, trained_paths(spec_of(model), "fine-tune", last_n_blocks))


def trainable_names(model: keras.Model) -> list[str]:
    """Paths (``layer/variable``) of the trainable variables, in order."""
    return [v.path for v in model.trainable_variables]


def frozen_batchnorms(model: keras.Model) -> list[str]:
    """Names of the BatchNormalization layers that run in inference mode because they are frozen."""
    return [lyr.name for lyr in model.layers if isinstance(lyr, layers.BatchNormalization) and not lyr.trainable]


class InferenceOnly(layers.Layer):
    """Runs ``inner`` in inference mode whatever the caller's ``training``: a frozen backbone whose
    BatchNorm and Dropout behave as at prediction time, also inside ``fit``.

    Needed because in Keras 3 ``inner(x, training=False)`` inside a functional model is overridden
    by the outer call's ``training=True``; an explicit argument in ``call`` is not.
    """

    def __init__(self, inner: keras.Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs, training=None):
        return self.inner(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(input_shape)


def features_model(model: keras.Model) -> keras.Model:
    """The model up to the classifier's input (pooled, flattened features): what feature
    extraction computes once per image, and timm's ``pre_logits``. Shares its layers with ``model``;
    takes one array as ``model`` does (no input-structure warning)."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, classifier_layers(model)[0].input, name=f"{model.name}_features")


def head_model(model: keras.Model) -> keras.Model:
    """The classifier alone, on feature vectors: trains on cached features. Shares its layers."""
    head = classifier_layers(model)
    inputs = keras.Input(shape=tuple(head[0].input.shape[1:]), name="features")
    x = inputs
    for layer in head:
        x = layer(x)
    return keras.Model(inputs, x, name=f"{model.name}_head")


# ----------------------------------------------------------------------------- learning rates


def param_groups(model: keras.Model, lr: float, backbone_lr_factor: float = 0.1) -> list[dict[str, Any]]:
    """The torch_impl ``param_groups`` twin: the new classifier's trainable variables at ``lr``,
    every other trainable (pretrained) variable at ``lr * backbone_lr_factor``. Frozen variables are
    left out; each group has ``name`` ("classifier"/"backbone"), ``variables`` and ``lr``."""
    spec = spec_of(model)
    check_rates(lr, backbone_lr_factor)
    head = {id(v) for lyr in classifier_layers(model) for v in lyr.trainable_variables}
    variables = model.trainable_variables
    groups = [
        {"name": "classifier", "variables": [v for v in variables if id(v) in head], "lr": lr},
        {"name": "backbone", "variables": [v for v in variables if id(v) not in head], "lr": lr * backbone_lr_factor},
    ]
    groups = [g for g in groups if g["variables"]]
    if not groups:
        raise ValueError(f"{spec.name} has no trainable variables: call freeze_backbone() or unfreeze() first")
    return groups


def make_optimizer(
    model: keras.Model, lr, backbone_lr_factor: float = 0.1, weight_decay: float | None = None, **adam_kwargs: Any
) -> TorchAdam:
    """torch's AdamW rule (keras_impl.optimizers.TorchAdam, decoupled decay) at ``lr`` (a float or a
    ``LearningRateSchedule``) for the classifier and ``lr * backbone_lr_factor`` for every other
    trainable variable of ``model`` (see :func:`param_groups`), as torch_impl's parameter groups;
    set the trainable layers first. Without ``weight_decay`` it is torch's Adam."""
    groups = {
        g["name"]: g for g in param_groups(model, lr if isinstance(lr, (int, float)) else 1.0, backbone_lr_factor)
    }
    backbone = groups.get("backbone", {"variables": []})["variables"]
    return TorchAdam(
        learning_rate=lr,
        lr_multipliers={v.path: backbone_lr_factor for v in backbone},
        weight_decay=weight_decay or 0.0,
        decoupled=True,
        **adam_kwargs,
    )
