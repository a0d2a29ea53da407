"""Ray's single-machine mode for a private local Ray: node address 127.0.0.1, so its servers listen on loopback only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

LOOPBACK = "127.0.0.1"
SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray's own default on macOS and Windows


@contextmanager
def loopback_only() -> Iterator[None]:
    """While a private Ray starts inside it, its node address is 127.0.0.1 and its servers bind that address.

    On Linux Ray rewrites a node address of 127.0.0.1 to the machine's network address, and its GCS, raylet,
    agents and workers then listen on every interface. With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (Ray's mode on
    macOS and Windows) it keeps 127.0.0.1 and they bind it. Ray reads the variable once, at import, into
    ray_constants: so the driver's copy is switched too, for the start only (a later ray.init(address=HOST:PORT)
    in this process must still join a cluster by its real address). The processes started meanwhile keep the
    variable in their environment, and so do the workers the raylet starts later: all agree on 127.0.0.1.
    """
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(SINGLE_MACHINE), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(SINGLE_MACHINE, None)
        else:
            os.environ[SINGLE_MACHINE] = saved_env
