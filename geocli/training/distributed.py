"""Several processes, one model: torchrun + DistributedDataParallel.

``torchrun`` starts one process per GPU (or CPU worker) and sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; ``init_distributed`` reads them, joins the process group (NCCL on CUDA,
gloo on CPU) and picks this process's device. Without those variables it is a no-op: a single
process is world 1, rank 0, and the same training code runs unchanged.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def init_distributed(device: str | None = None) -> tuple[World, torch.device]:
    """Join the torchrun process group when there is one; this process's world and device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    world = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if cuda:
        dev = torch.device("cuda", world.local_rank) if world.distributed else torch.device(device or "cuda")
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device or "cpu")
    if world.distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return world, dev


def current_world() -> World:
    """This process's world once ``init_distributed`` joined a group (else a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def barrier(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def mean_over_ranks(value: float, world: World, device: torch.device) -> float:
    """Average a per-rank number (e.g. epoch loss) over all processes."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world.size


def broadcast_flag(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when any rank raised the flag (e.g. Ctrl-C seen by one process)."""
    if not world.distributed:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_lists(items: list, world: World | None) -> list:
    """Every rank's ``items`` concatenated in rank order (``items`` itself without torchrun)."""
    if world is None or not world.distributed:
        return items
    parts: list = [None] * world.size
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]
