"""Multi-process training with ``torchrun``: process-group set-up and the few collectives we use.

Under ``torchrun --nproc_per_node=N -m artstyle train ...`` every process trains the same network
on its own photo crops; DistributedDataParallel averages the gradients. Only rank 0 writes files.
Without torchrun (``WORLD_SIZE`` unset or 1) everything here is a no-op.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from ..runtime import resolve_device


def init_from_env(device_name: str) -> torch.device:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPUs); returns this
    process's device (``cuda:LOCAL_RANK`` on GPUs)."""
    device = resolve_device(device_name)
    if world_size_from_env() <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def world_size_from_env() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (just ``[obj]`` without a process group)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def smallest_positive(value: int, device: torch.device) -> int:
    """The smallest positive ``value`` over every process; 0 when none is positive."""
    if not dist.is_initialized():
        return value
    big = torch.iinfo(torch.int64).max
    values = torch.tensor([value if value > 0 else big], dtype=torch.int64, device=device)
    dist.all_reduce(values, op=dist.ReduceOp.MIN)
    smallest = int(values.item())
    return 0 if smallest == big else smallest


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around the trainable network when there is a process group."""
    if not dist.is_initialized():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
