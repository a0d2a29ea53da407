"""Data parallelism for any family: gradients averaged over workers before every optimiser step (torch.distributed)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from genbench.families.base import Family


def _average_grads(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    """Step pre-hook: replace each local gradient by the mean over workers, in one flat all-reduce."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def make_data_parallel(family: Family) -> None:
    """Average gradients over the process group before every step of every optimiser of `family`.

    Equivalent to DDP's gradient averaging for every family and every pair of networks a step touches
    (GAN: D and G in turn, penalties included) without wrapping modules; gradient clipping, where a
    family clips, acts on each worker's local gradient before the average.
    """
    optimisers = list(family.parts().optimisers.values())  # the GAN has two
    pending = {id(o) for o in optimisers}

    def first_step_sync(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        # Same seed, same initial weights; but data-dependent initialisation (ActNorm) saw each worker's own
        # first batch: rank 0's modules win once, before any optimiser steps.
        if pending:
            pending.clear()
            broadcast_modules(family)

    for optimizer in optimisers:
        optimizer.register_step_pre_hook(first_step_sync)
        optimizer.register_step_pre_hook(_average_grads)


def broadcast_modules(family: Family, src: int = 0) -> None:
    """Copy rank `src`'s parameters and buffers of every declared module (EMA copies included) to every worker
    (after data-dependent initialisation)."""
    for module in family.parts().modules.values():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src)


def mean_over_workers(values: torch.Tensor) -> torch.Tensor:
    """The window scalars averaged over workers, so that every worker takes the same divergence decision."""
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / dist.get_world_size()


def from_rank0(value: Any) -> Any:
    """Rank 0's Python value on every worker (evaluation results: all workers must stop or go on together)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
