"""Counts the FLOPs of the tensor operations run inside a block (matmuls, convolutions, attention)."""

from __future__ import annotations

from typing import Any

import torch
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
        if func._overloadpacket is CONV_BACKWARD and args[GROUPS] > 1:
            self.total += grouped_conv_backward_flops(formula, args, kwargs, out)
        elif formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


CONV_BACKWARD = torch.ops.aten.convolution_backward
GROUPS, OUTPUT_MASK = 9, 10  # positions in aten.convolution_backward's arguments


def grouped_conv_backward_flops(formula: Any, args: tuple, kwargs: dict, out: Any) -> int:
    """torch's count of a grouped convolution's backward with its weight-gradient term divided by `groups`: torch
    counts that term as if every group read every input channel, `groups` times the work (genbench.nets.ensemble_conv
    runs S members as S groups, whose count must be S times one member's)."""
    mask = list(args[OUTPUT_MASK])
    inputs = formula(*args[:OUTPUT_MASK], [mask[0], False, mask[2]], *args[OUTPUT_MASK + 1 :], **kwargs, out_val=out)
    weights = formula(*args[:OUTPUT_MASK], [False, mask[1], False], *args[OUTPUT_MASK + 1 :], **kwargs, out_val=out)
    return int(inputs + weights // args[GROUPS])
