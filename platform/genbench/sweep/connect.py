"""Ray for a sweep or a run: a private local Ray on 127.0.0.1, or a cluster joined at its GCS address."""

from __future__ import annotations

import logging
import os
import socket

from genbench.errors import GenbenchError


def start_local_ray(num_cpus: int | None = None, log_to_driver: bool = False, dashboard: bool = False) -> None:
    """A private local Ray instance: never joins a cluster that happens to be running on this machine.

    `dashboard` starts Ray's dashboard (state API) on 127.0.0.1: Ray Train's controller watches itself with it.
    Every server of it listens on 127.0.0.1 only (loopback_only), with Ray's token authentication still on.
    """
    import ray

    from genbench.sweep.loopback import LOOPBACK, loopback_only

    if not ray.is_initialized():
        with loopback_only():
            ray.init(
                address="local",
                num_cpus=num_cpus or os.cpu_count(),
                include_dashboard=dashboard,
                dashboard_host=LOOPBACK,
                _node_ip_address=LOOPBACK,
                log_to_driver=log_to_driver,
                logging_level=logging.WARNING,
                configure_logging=True,
            )


PRIVATE_RAY = "a private local Ray"


def connect_ray(address: str | None, dashboard: bool = False) -> str:
    """Join the Ray cluster at `address` (host:port or 'auto'), else start a private local Ray; returns where.

    A cluster joined here is only disconnected from afterwards (ray.shutdown() in a driver that did not start
    it leaves the cluster running); a private local Ray stops with it.
    """
    import ray

    if ray.is_initialized():  # a submitted job's entrypoint has joined its cluster already
        return "the connected Ray cluster"
    if not address or address == "local":
        start_local_ray(dashboard=dashboard)
        return PRIVATE_RAY
    check_address(address)
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise GenbenchError(
            f"cannot join the Ray cluster at {address}: {str(exc).strip().splitlines()[0]} ({ADDRESS_HELP})"
        ) from None
    return f"the Ray cluster at {address}"


ADDRESS_HELP = (
    "--address takes the cluster's GCS address HOST:6379, or 'auto' on a cluster node; "
    "without --address and RAY_ADDRESS a private local Ray starts"
)


def check_address(address: str) -> None:
    """A quick TCP connect first: ray.init waits minutes for a GCS that is not there."""
    if address == "auto":
        return
    if "://" in address:
        raise GenbenchError(
            f"{address} is not a Ray cluster address: a sweep joins a cluster at its GCS address "
            f"(the Jobs API URL is for genbench submit and jobs; {ADDRESS_HELP})"
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise GenbenchError(f"{address}: expected HOST:PORT ({ADDRESS_HELP})")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise GenbenchError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or type(exc).__name__}); is it "
            f"up (`ray start --head`) and the address right? ({ADDRESS_HELP})"
        ) from None
