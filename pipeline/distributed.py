"""Multi-process training with torchrun (DistributedDataParallel): NCCL on GPUs, gloo on CPU."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup() -> Dist:
    """Join the process group torchrun describes in RANK/WORLD_SIZE/LOCAL_RANK; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    d = Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local_rank)
    if d.main:
        log.info("DDP: %d processes (%s)", d.world, backend)
    return d


def mean(values: torch.Tensor, d: Dist) -> torch.Tensor:
    """Average a tensor over all processes (identity for one process)."""
    if not d.enabled:
        return values
    import torch.distributed as dist

    values = values.clone()
    dist.all_reduce(values)
    return values / d.world


def gather_objects(obj, d: Dist) -> list:
    """Every process's `obj`, in rank order, on every process ([obj] for one process)."""
    if not d.enabled:
        return [obj]
    out = [None] * d.world
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast_object(obj, d: Dist):
    """Rank 0's `obj` on every process (so all ranks act on one decision)."""
    if not d.enabled:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def barrier(d: Dist) -> None:
    if d.enabled:
        torch.distributed.barrier()


def teardown(d: Dist) -> None:
    if d.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
