"""More than one device, and more than one host, with Keras' own distribution API.

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
    return DataParallelRun(keras.distribution.DataParallel(devices=devices), len(devices), jax.process_index() == 0)
