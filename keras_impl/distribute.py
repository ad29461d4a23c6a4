"""Where a Keras fine-tuning run executes: the device of the active backend (:func:`select_device`),
or more than one device, and more than one host, with Keras' own distribution API.

``--distribute`` runs the fine-tuning under ``keras.distribution.DataParallel`` over every device
Keras lists (``keras.distribution.list_devices()``): the model is replicated, each batch is split
across the devices, and the gradients are averaged. The batch size stays per device, as with
torchrun, so N devices with batch B step like one with batch N*B. Several hosts join through
Keras' ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` / ``KERAS_DISTRIBUTION_NUM_PROCESSES`` /
``KERAS_DISTRIBUTION_PROCESS_ID`` variables (``keras.distribution.initialize``). Keras implements
this on the jax backend only; elsewhere the error says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import keras


@dataclass
class DataParallelRun:
    distribution: Any
    devices: int
    is_main: bool  # process 0 of a multi-host run writes the files
    kind: str = "cpu"  # the devices' kind, as Keras names them ("cpu", "gpu", "tpu")


def data_parallel() -> DataParallelRun:
    """Keras' DataParallel over every visible device (and host), or one clear error."""
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            f"--distribute uses keras.distribution.DataParallel, which Keras implements on the jax backend only; "
            f"received the {backend} backend: set KERAS_BACKEND=jax, or use torchrun with python -m torch_impl finetune"
        )
    if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"):
        keras.distribution.initialize()
    import jax  # the jax backend is active: its process index says which host writes

    devices = keras.distribution.list_devices()
    return DataParallelRun(
        keras.distribution.DataParallel(devices=devices),
        len(devices),
        jax.process_index() == 0,
        devices[0].partition(":")[0] if devices else "cpu",
    )


@dataclass(frozen=True)
class Device:
    """Where the active Keras backend will run: ``name`` is what ``keras.device(name)`` takes."""

    backend: str
    name: str  # "cpu:0" ("cpu" on torch), "gpu:0", "mps"
    description: str

    @property
    def is_gpu(self) -> bool:
        return not self.name.startswith("cpu")

    def __str__(self) -> str:
        return self.name


def _gpus(backend: str) -> list[str]:
    """Descriptions of the GPUs the backend sees; its library is imported only here."""
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return (
            [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if torch.cuda.is_available()
            else []
        )
    return []


def _mps(backend: str) -> bool:
    if backend != "torch":
        return False
    import torch

    return torch.backends.mps.is_available()


def _cpu(backend: str) -> Device:
    """The CPU as ``keras.device`` should be told it: Keras' torch backend names it "cpu" and builds
    the variables of a "cpu:0" scope as copies of its own (non-leaf tensors whose trainable flag
    cannot be set, Keras 3.15); the other backends say "cpu:0"."""
    return Device(backend, "cpu" if backend == "torch" else "cpu:0", f"CPU on the {backend} backend")


def select_device(preferred: str | None = None) -> Device:
    """``preferred`` ("cpu", "cuda", "cuda:1", "mps"), or with None/"auto" the best the active Keras
    backend has: its first GPU, then (torch backend) mps, then the CPU. The flags are torch_impl's;
    "cuda" means the backend's GPU. Asking for an accelerator that is not there is an error."""
    backend = keras.backend.backend()
    if preferred in (None, "auto"):
        gpus = _gpus(backend)
        if gpus:
            return Device(backend, "gpu:0", f"GPU 0 of {len(gpus)} ({gpus[0]}) on the {backend} backend")
        if _mps(backend):
            return Device(backend, "mps", "Apple MPS on the torch backend")
        return _cpu(backend)
    if preferred == "cpu":
        return _cpu(backend)
    if preferred == "mps":
        if not _mps(backend):
            raise ValueError(
                f"device 'mps' requested but the {backend} Keras backend has no MPS device (only the torch backend "
                "on Apple silicon has)"
            )
        return Device(backend, "mps", "Apple MPS on the torch backend")
    kind, _, index = preferred.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, received {preferred!r}")
    gpus = _gpus(backend)
    i = int(index or 0)
    if i >= len(gpus):
        hint = (
            " (tensorflow-cpu has none; is CUDA_VISIBLE_DEVICES empty?)" if backend == "tensorflow" and not gpus else ""
        )
        raise ValueError(
            f"device {preferred!r} requested but the {backend} Keras backend sees {len(gpus)} GPU(s){hint}"
        )
    return Device(backend, f"gpu:{i}", f"GPU {i} of {len(gpus)} ({gpus[i]}) on the {backend} backend")
