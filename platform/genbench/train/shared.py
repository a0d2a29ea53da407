"""The data set a sweep's driver loads once, in Ray's object store: each node holds one copy its trials read."""

from __future__ import annotations

from typing import Any

from genbench.data.base import Dataset, from_arrays, to_arrays


def share(data: Dataset) -> list[Any]:
    """[ObjectRef] of the data set's arrays (a list: Ray resolves a bare ref passed to a task, not one inside it)."""
    import ray

    return [ray.put(to_arrays(data))]


def shared_data(ref: list[Any] | None) -> Dataset | None:
    """The data set behind share(...)'s reference, as tensors over the node's shared copy; None without one."""
    if not ref:
        return None
    import ray

    return from_arrays(ray.get(ref[0]))
