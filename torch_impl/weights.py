"""Loading and saving weights files safely: torch.load(weights_only=True) or safetensors.

No code is unpickled and nothing is downloaded: ``weights`` is a local file or a state dict.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from cnnbase.atomic import atomic_write
from cnnbase.weight_files import PICKLE_SUFFIXES, TORCH_SUFFIXES

WeightsLike = str | os.PathLike | Mapping[str, torch.Tensor]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt (weights_only) or .safetensors file.

    Training checkpoints that wrap the weights (``{"state_dict": ...}`` or ``{"model": ...}``) and
    DataParallel's ``module.`` prefix are unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        from cnnspec.published import not_found_hint

        raise FileNotFoundError(f"weights file not found: {path}{not_found_hint(str(path))}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"{path} is not a readable safetensors file: {err}") from None
    elif suffix in PICKLE_SUFFIXES:
        try:
            with (
                warnings.catch_warnings()
            ):  # torch's "please file an issue" about pickle protocols is not the user's business
                warnings.simplefilter("ignore")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle/zip errors come in many types
            raise ValueError(
                f"{path} is not a torch checkpoint that loads with weights_only=True: {_load_failure(path, err)}"
            ) from None
    else:
        raise ValueError(f"unsupported weights file {path.name!r}: expected one of {TORCH_SUFFIXES}")
    return _unwrap(state, str(path))


def _load_failure(path: Path, err: BaseException) -> str:
    """Why torch.load refused, in our words: its own text advises weights_only=False (running the
    file's pickled code), which this project never does."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        return "the file is empty"
    if head[:1] == b"\x80":  # a pickle stream (torch.save's legacy format, or plain pickle.dump)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        return (
            "a pickle with more than tensors in it"
            + (f" ({found.group(1)})" if found else "")
            + "; pickled code is never run: save a state_dict with torch.save(model.state_dict(), f), "
            "or use safetensors"
        )
    if head != b"PK":
        return "its bytes are neither a zip archive (torch.save) nor a pickle: not a checkpoint"
    first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
    return first.split(". This is an internal miniz error")[0] + " (a truncated or damaged file?)"


def _unwrap(state: object, source: str) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} does not hold a state dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def load_into(model: nn.Module, weights: WeightsLike, ignore_prefixes: tuple = ()) -> None:
    """Loads strictly, after checking keys and shapes so a mismatch names the layers involved."""
    state = (
        read_state_dict(weights)
        if isinstance(weights, (str, os.PathLike))
        else _unwrap(weights, "the given state dict")
    )
    state = {k: v for k, v in state.items() if k.split(".")[0] not in ignore_prefixes}
    own = model.state_dict()
    name = getattr(getattr(model, "spec", None), "name", type(model).__name__)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"weights do not fit {name}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            hint = ""
            classifier = getattr(getattr(model, "spec", None), "classifier", None)
            if classifier and key.startswith(classifier + "."):
                n = tensor.shape[0]
                hint = f" (the checkpoint has {n} classes: build with num_classes={n}, then replace the head)"
            raise ValueError(
                f"weights do not fit {name}: {key} has shape {tuple(tensor.shape)} in the file, "
                f"{tuple(own[key].shape)} in the model{hint}"
            )
    model.load_state_dict(state, strict=True)


def save_state_dict(state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Writes .safetensors or .pth atomically (the project's one writer: temp file, then rename)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TORCH_SUFFIXES:
        raise ValueError(f"unsupported weights file {path.name!r}: expected .pth, .pt or .safetensors")
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}

    def write(tmp: str) -> None:
        if suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(tensors, tmp)
        else:
            torch.save(tensors, tmp)

    return atomic_write(path, write, suffix=suffix)
