"""Counts the FLOPs of the tensor operations run inside a block (matmuls, convolutions, attention)."""

from __future__ import annotations

from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class FlopCount(TorchDispatchMode):
    """torch's FLOP formulas without FlopCounterMode's module tracker, which breaks autograd.grad(create_graph=True)
    (gradient penalties). Use as `with FlopCount() as count: ...; count.total`."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out
