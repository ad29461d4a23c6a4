"""Transfer-learning surgery on a :class:`SpecModel`: a new classifier, a frozen backbone, partial
unfreezing and a lower learning rate for pretrained layers.

Three words, used the same way on the Keras side:

- the *classifier* is the module at ``model.spec.classifier`` (``fc``, ``classifier.6``): the only
  part :func:`replace_head` replaces and the only part feature extraction trains;
- the *head* is the spec's head (pooling, flatten, classifier; for VGG and AlexNet also the
  pretrained fc6/fc7, which feature extraction keeps frozen, as the classic DeCAF features);
- the *backbone* is everything that is not the classifier.

Example::

    from torch_impl import resnet18
    from torch_impl.transfer import replace_head, freeze_backbone, param_groups
    model = freeze_backbone(replace_head(resnet18(weights="resnet18-f37072fd.pth"), num_classes=5))
    optimizer = torch.optim.Adam(param_groups(model, lr=1e-2))

Frozen BatchNorm layers must not update their running statistics, even in ``model.train()``
(the cached-feature path and the live path then see the same backbone). Each frozen BatchNorm
and Dropout gets a forward pre-hook that switches it to eval mode just before it runs. A hook,
rather than overriding ``train()``: SpecModel's ``train()`` is torch's own and is called by user
code and libraries alike; the hook works whoever called ``train()``, keeps its state as a flag on
the module (so deepcopy, pickling and ``state_dict`` are unaffected) and is switched off by
:func:`unfreeze`. Note that ``bn.training`` reads True after ``model.train()`` until the next
forward; ``frozen_in_eval(model)`` lists the modules that are held in eval mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import torch
from torch import nn

import cnnspec

from .builder import SpecModel

_HELD = "_transfer_held_in_eval"  # flag on a BatchNorm/Dropout: run it in eval mode
_HOOKED = "_transfer_eval_hook"  # set once the hook is registered, so it is registered once
# layers that behave differently in training: BatchNorm, dropout, attention (its dropout on the weights)
_EVAL_KINDS = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.MultiheadAttention)


class MLPHead(nn.Sequential):
    """Linear-BatchNorm1d-ReLU-Linear where the final Linear was.

    Exposes ``in_features``/``out_features`` like ``nn.Linear``, so ``model.num_classes`` and
    ``get_classifier()`` keep working; its keys are ``<classifier>.0.weight`` ... ``<classifier>.3.bias``.
    """

    def __init__(self, in_features: int, hidden: int, num_classes: int) -> None:
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    @property
    def in_features(self) -> int:
        return self[0].in_features

    @property
    def out_features(self) -> int:
        return self[3].out_features


def _check_model(model: nn.Module) -> SpecModel:
    if not isinstance(model, SpecModel):
        raise TypeError(f"expected a torch_impl SpecModel (from torch_impl.get_model), received {type(model).__name__}")
    return model


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, received {name}={value!r}")
    return value


def replace_head(model: SpecModel, num_classes: int, hidden: int | None = None) -> SpecModel:
    """Replaces the final Linear (``model.spec.classifier``) by a fresh one with ``num_classes``
    outputs, or by an :class:`MLPHead` when ``hidden`` is given; same dotted path, same device and
    dtype. ``model.spec`` is updated to the new ``num_classes`` (its classifier node describes the
    last Linear; an MLPHead's hidden layers are torch-only). Returns the model.
    """
    model = _check_model(model)
    _positive("num_classes", num_classes)
    old = model.get_classifier()
    like = old.weight
    if hidden is None:
        new: nn.Module = nn.Linear(old.in_features, num_classes)
    else:
        new = MLPHead(old.in_features, _positive("hidden", hidden), num_classes)
    new = new.to(device=like.device, dtype=like.dtype)
    parent, _, leaf = model.spec.classifier.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)  # keeps the slot's position
    spec = cnnspec.replace_at(model.spec, model.spec.classifier, out=num_classes)
    model.spec = dataclasses.replace(spec, num_classes=num_classes)
    return model


def _inside(path: str, prefixes: Iterable[str]) -> bool:
    """True when ``path`` is one of ``prefixes`` or below one (``features.1`` is not below ``features.10``)."""
    return any(p == "" or path == p or path.startswith(p + ".") for p in prefixes)


def _hold_in_eval(module: nn.Module, args: tuple) -> None:
    if getattr(module, _HELD, False):
        module.train(False)


def _set_trainable(model: SpecModel, prefixes: list[str]) -> SpecModel:
    """Parameters under ``prefixes`` train, all others are frozen; frozen BatchNorm/Dropout run in eval."""
    for name, param in model.named_parameters():
        param.requires_grad_(_inside(name, prefixes))
    for path, module in model.named_modules():
        if not isinstance(module, _EVAL_KINDS):
            continue
        held = not _inside(path, prefixes)
        if held and not getattr(module, _HOOKED, False):
            module.register_forward_pre_hook(_hold_in_eval)
            setattr(module, _HOOKED, True)
        if getattr(module, _HOOKED, False):
            setattr(module, _HELD, held)
        module.train(False if held else model.training)
    return model


def freeze_backbone(model: SpecModel) -> SpecModel:
    """Feature extraction: only the classifier trains; every other parameter is frozen, and the
    backbone's BatchNorm (running statistics) and Dropout stay in eval mode through ``model.train()``."""
    model = _check_model(model)
    return _set_trainable(model, [model.spec.classifier])


def unfreeze(model: SpecModel, last_n_blocks: int | None = None) -> SpecModel:
    """Fine-tuning: ``None`` makes everything trainable; ``N`` the last N entries of
    ``model.spec.stages`` plus the spec's head (for ResNet: ``layer4`` and ``fc`` when N=1), with
    the rest frozen as in :func:`freeze_backbone`; ``0`` is the head alone."""
    model = _check_model(model)
    if last_n_blocks is None:
        return _set_trainable(model, [""])
    stages = model.spec.stages
    if isinstance(last_n_blocks, bool) or not isinstance(last_n_blocks, int) or not 0 <= last_n_blocks <= len(stages):
        raise ValueError(
            f"last_n_blocks must be an int from 0 to {len(stages)} ({model.spec.name} has {len(stages)} stages: "
            f"{[s[0] if len(s) == 1 else f'{s[0]}..{s[-1]}' for s in stages]}), received last_n_blocks={last_n_blocks!r}"
        )
    chosen = [path for stage in stages[len(stages) - last_n_blocks :] for path in stage]
    return _set_trainable(model, chosen + [node.name for node in model.spec.head])


def frozen_in_eval(model: nn.Module) -> list[str]:
    """Dotted paths of the BatchNorm/Dropout modules held in eval mode by :func:`freeze_backbone`."""
    return [path for path, m in model.named_modules() if getattr(m, _HELD, False)]


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that require gradients, in order."""
    return [name for name, p in model.named_parameters() if p.requires_grad]


def param_groups(model: SpecModel, lr: float, backbone_lr_factor: float = 0.1) -> list[dict]:
    """Optimizer parameter groups: the new classifier at ``lr``, every other trainable (pretrained)
    parameter at ``lr * backbone_lr_factor``, so fine-tuning adapts the backbone without wrecking it.
    Frozen parameters are left out; each group carries a ``name`` ("classifier"/"backbone")."""
    model = _check_model(model)
    if not lr > 0 or not backbone_lr_factor >= 0:
        raise ValueError(
            f"need lr > 0 and backbone_lr_factor >= 0, received lr={lr!r}, backbone_lr_factor={backbone_lr_factor!r}"
        )
    head: list[nn.Parameter] = []
    body: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if _inside(name, [model.spec.classifier]) else body).append(param)
    groups = [
        {"name": "classifier", "params": head, "lr": lr},
        {"name": "backbone", "params": body, "lr": lr * backbone_lr_factor},
    ]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError(f"{model.spec.name} has no trainable parameters: call freeze_backbone() or unfreeze() first")
    return groups


def select_device(preferred: str | None = None) -> torch.device:
    """``preferred`` ("cpu", "cuda", "cuda:1", "mps"), or with None/"auto" the best available:
    cuda, then mps, then cpu. Asking for an accelerator that is not there is an error, not a fallback."""
    if preferred in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preferred)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, received {preferred!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {preferred!r} requested but torch.cuda.is_available() is False (no GPU visible, or a CPU-only torch build)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {preferred!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {preferred!r} requested but torch.backends.mps.is_available() is False")
    return device
