"""Where a fine-tuning run executes: the device (:func:`select_device`), and more than one
process: ``torchrun --nproc_per_node=N -m torch_impl finetune ...``.

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; :func:`join` then starts the process group (nccl
on CUDA, gloo on CPU) and gives each process its device. Each process reads its shard of the
data through a ``DistributedSampler`` (reshuffled every epoch by ``set_epoch``), with the batch
size per process, as torchvision's reference scripts do; DistributedDataParallel averages the
gradients, so N processes with batch B step like one process with batch N*B. Rank 0 alone writes
checkpoints and logs (the fine-tuning core asks ``is_main``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Cluster:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    owns_group: bool = False  # this code started the process group, so it ends it
    backend: str | None = None  # the process group's ("gloo", "nccl"); None for a single process

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def join(device: torch.device) -> tuple:
    """(Cluster, device): the process group from torchrun's variables (a single process without
    them), and this process's device (``cuda:LOCAL_RANK`` on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Cluster(), device
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Cluster(dist.get_world_size(), dist.get_rank(), local_rank, owns, str(dist.get_backend())), device


def wrap(net: nn.Module, cluster: Cluster, device: torch.device) -> nn.Module:
    """``net`` in DistributedDataParallel when there are several processes (gradients averaged)."""
    if not cluster.distributed:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)


def sum_over_processes(values: Sequence[float], cluster: Cluster, device: torch.device) -> list:
    """Element-wise sums of ``values`` over all processes (loss sums, correct counts, sample counts)."""
    if not cluster.distributed:
        return list(values)
    import torch.distributed as dist

    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def leave(cluster: Cluster) -> None:
    if cluster.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()


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
                f"device {preferred!r} requested but torch.cuda.is_available() is False (no GPU visible, or a "
                "CPU-only torch build)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {preferred!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {preferred!r} requested but torch.backends.mps.is_available() is False")
    return device
