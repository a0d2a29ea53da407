"""Bounded-memory evaluation: how many rows fit a chunk, and functions mapped over a tensor in chunks."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# The largest tensor one chunk of an evaluation (sampling, likelihood) or of a micro-batched training step may
# create: a few such tensors live at once, so a default run on 32x32 RGB images stays under 2 GB of resident
# memory on the CPU (docs/measurements/2026-11-30-memory.md). Results do not depend on it beyond float noise:
# the noise of an evaluation is drawn for all rows before its network runs in chunks.
CHUNK_BYTES = 128 * 2**20


def chunk_rows(row_bytes: float, budget_bytes: int = CHUNK_BYTES) -> int:
    """How many rows fit a chunk when one row's largest tensor takes row_bytes (at least one)."""
    return max(1, int(budget_bytes // max(row_bytes, 1.0)))


def split_rows(x: torch.Tensor, rows: int) -> tuple[torch.Tensor, ...]:
    """x split along dim 0 into the fewest near-equal chunks of at most `rows` rows (views, no copy)."""
    return torch.tensor_split(x, max(1, math.ceil(len(x) / rows)))


def map_rows(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, rows: int) -> torch.Tensor:
    """fn over x (N, ...) in chunks of at most `rows` rows, concatenated: fn(x) with a bounded peak."""
    return torch.cat([fn(part) for part in split_rows(x, rows)])
