"""Data-parallel training across processes: one training script for 1 CPU, 1 GPU or N GPUs on M nodes.

Launch a trainer as usual for one process, or under ``torchrun --nproc-per-node N`` /
``accelerate launch --num_processes N`` for several: both set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
and the rendezvous address, which :func:`init` reads. Each process draws the same *global* batch (the
same seeded generator on every rank), takes its own contiguous slice with :meth:`Dist.shard`, and runs
its model wrapped in PyTorch's ``DistributedDataParallel``, which averages the gradients. With equal
slices and per-element mean losses that is the gradient of the global batch, so N processes follow the
single-process run step for step (up to floating-point summation order; ``tests/models/test_distributed.py``
checks it on two CPU processes over gloo). GPUs use NCCL, CPUs gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TypeVar

import torch
import torch.distributed as tdist
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 when not launched by torchrun/accelerate)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs, evaluates and writes checkpoints."""
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous slice of a global batch (dim 0), moved to its device."""
        if self.world == 1:
            return batch.to(self.device)
        n = batch.shape[0]
        if n % self.world:
            raise ValueError(f"the global batch ({n}) must divide evenly by the number of processes ({self.world})")
        size = n // self.world
        return batch[self.rank * size:(self.rank + 1) * size].to(self.device)

    def part(self, items: list[T]) -> list[T]:
        """This rank's share of a global batch given as a list (every ``world``-th item: batches sorted
        by length stay balanced). Uneven shares need a loss normalised by the global count."""
        return items[self.rank::self.world]

    def wrap(self, module: nn.Module, find_unused: bool = False) -> nn.Module:
        """The module under DistributedDataParallel when there are several processes; itself otherwise.
        ``find_unused``: some steps leave parameters unused (a phase that skips the encoder)."""
        module.to(self.device)
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)

    def mean(self, values: list[float]) -> list[float]:
        """Each value averaged over the processes (the global batch's loss from the slices' losses)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return (t / self.world).tolist()

    def sum(self, values: list[float]) -> list[float]:
        """Each value summed over the processes (counts and summed losses of uneven slices)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return t.tolist()

    def average_grads(self, params: list[nn.Parameter]) -> None:
        """Average these parameters' gradients over the processes: for trainable parameters that live
        outside the DDP-wrapped module (SAT's learned ``a, b``), so every rank takes the same step."""
        if self.world == 1:
            return
        for p in params:
            if p.grad is not None:
                tdist.all_reduce(p.grad)
                p.grad /= self.world

    def share(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank (data prepared once, e.g. a trained tokenizer)."""
        if self.world == 1:
            return obj
        box = [obj if self.main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (stop decisions that depend on a clock must not diverge)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1 if flag else 0], device=self.device)
        tdist.broadcast(t, src=0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            tdist.barrier()

    def close(self) -> None:
        if self.world > 1 and tdist.is_initialized():
            tdist.destroy_process_group()


def init() -> Dist:
    """Join the process group the launcher describes in the environment (nothing to join: one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if world > 1 and not tdist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        tdist.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank=rank, world=world, local_rank=local, device=device)
