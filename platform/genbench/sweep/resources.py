"""What each trial asks Ray for, how many trials run at once now and as the cluster grows, the default GPU share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from genbench.errors import ConfigError

DRIVER_MEMORY_BYTES = 2**20  # a data-parallel trial's only resource: a bundle must hold something, and no CPU
HEAD_NODE = "node:__internal_head__"  # Ray's resource of the head node (where the sweep's own driver runs)
TRIALS_PER_GPU = 4  # the default share packs at most this many trials on one GPU (see default_gpu_share)
REFRESH_S = 5.0  # how often a running sweep looks at the cluster again (nodes joined or left)
Resources = dict[str, float]  # Ray resources: {"CPU": 4, "GPU": 1.0, ...}
# Peak resident memory of a default `genbench train FAMILY` on 32x32 RGB images on the CPU, rounded up (measured
# on 600 images: docs/measurements/2026-11-30-memory.md), and of a trial process before its run's networks and
# data (Python, torch, genbench: about 320 MiB measured in a plain process; Ray's worker adds its own)
PEAK_32_RGB_BYTES = {
    family: mib * 2.0**20
    for family, mib in {"gan": 810, "vae": 1000, "diffusion": 1630, "autoregressive": 900, "flow": 1280}.items()
}
PROCESS_BASE_BYTES = 512 * 2.0**20


@dataclass(frozen=True)
class ClusterView:
    """The cluster a sweep runs on: its resources now, the shape of its GPU nodes and what it may grow to."""

    now: Resources  # total resources of the alive nodes
    gpu_node: tuple[float, float] | None = None  # (CPUs, GPUs) of one GPU node: an alive one, else the profile's
    grows_to: Resources | None = None  # total at the autoscaler's limit; None: unknown (or it cannot grow)
    can_grow: bool = False  # a cluster genbench joined may grow even when its limit is unknown
    limit_source: str = ""  # where grows_to comes from, for the printed plan
    memory_bytes: float = 0.0  # Ray's `memory` resource of the alive nodes: what their processes may use (0: unknown)


@dataclass(frozen=True)
class Request:
    """One trial's request: the bundles Ray reserves for the trial and what it holds in all while it trains."""

    bundles: list[Resources]  # a PlacementGroupFactory's bundles; the first is the trial process's
    demand: Resources  # what one trial holds in all (its seeds' bundles, or its Ray Train worker groups)
    lanes: int = 1  # seeds of one trial that train at the same time
    gpu_share: float = 0.0  # GPU share of each training process of the trial (per seed, or per worker)

    def describe(self) -> str:
        """'1 CPU + 0.5 GPU', or '2 x (1 CPU + 0.5 GPU)' for seeds trained side by side."""
        one = {k: v / self.lanes for k, v in self.demand.items()}
        text = " + ".join(f"{_number(one[k])} {k}" for k in ("CPU", "GPU") if one.get(k))
        return f"{self.lanes} x ({text})" if self.lanes > 1 else text or "no CPU or GPU"


def _number(value: float) -> str:
    return f"{value:g}"


def fits(demand: Resources, available: Resources) -> int:
    """How many times `demand` fits in `available`, resource by resource (a huge number when it asks for nothing)."""
    counts = [math.floor(available.get(k, 0.0) / v + 1e-9) for k, v in demand.items() if v > 0]
    return min(counts) if counts else 10**9


def per_process(cpus: int, gpus: float) -> Resources:
    return {"CPU": float(cpus), **({"GPU": gpus} if gpus else {})}


def trial_request(study: Any, seeds: int, view: ClusterView, batched: bool = False) -> Request:
    """What one trial of `study` asks Ray for. One seed trains in the trial's own process, and so do several that
    train as one batched model (`batched`, genbench.train.members); otherwise several train as Ray tasks in the
    trial's placement group, side by side as far as the cluster (at its limit) holds them, behind an empty head
    bundle (the trial process only waits and aggregates).

    A data-parallel trial is only the driver of its seeds' Ray Train worker groups, which reserve placement groups
    of their own: it holds no CPU (one it held would be missing from a worker group that needs every CPU of a node),
    only a sliver of the head node (see driver_bundle), and its demand is its seeds' groups side by side."""
    if study.distributed:
        group = {k: v * study.workers for k, v in per_process(study.cpus_per_trial, study.gpus_per_worker).items()}
        lanes = max(1, min(seeds, fits(group, view.grows_to or view.now)))
        return Request([driver_bundle()], {k: v * lanes for k, v in group.items()}, lanes, study.gpus_per_worker)
    share = study.gpus_per_trial or 0.0
    one = per_process(study.cpus_per_trial, share)
    if seeds == 1 or batched:
        return Request([one], one, 1, share)
    lanes = max(1, min(seeds, fits(one, view.grows_to or view.now)))
    return Request([{}] + [one] * lanes, {k: v * lanes for k, v in one.items()}, lanes, share)


def driver_bundle() -> Resources:
    """A data-parallel trial's bundle: 1 MiB of memory on the head node, beside the sweep's driver.

    Its worker groups' failures are Ray Train's to retry (from the latest checkpoint), so Tune does not retry these
    trials (tuner._fit); a driver on the head node is not lost with a worker node, and the head is the node a sweep
    cannot outlive anyway. Its Train controllers follow it there (Ray Train places them on their driver's node).
    """
    return {"memory": float(DRIVER_MEMORY_BYTES), HEAD_NODE: 0.001}


def concurrency(request: Request, view: ClusterView, cap: int, remaining: int) -> int:
    """How many trials may be live (running or waiting for resources) now.

    As many as fit in the cluster now, or at its autoscaler's limit where that is known, so that the trials
    waiting for resources show the autoscaler the nodes to add. A cluster that may grow to an unknown size gets
    one trial more than fits: that waiting trial is the demand that makes the autoscaler add a node, and once it
    runs the next one asks again. `search.max_concurrent` (cap) bounds it; so do the trials left to run.
    """
    now = fits(request.demand, view.now)
    bound = max(now, fits(request.demand, view.grows_to)) if view.grows_to else now + int(view.can_grow)
    bound = min(bound, cap) if cap else bound
    return max(1, min(bound, remaining))


def default_gpu_share(cpus_per_trial: int, view: ClusterView) -> float:
    """The GPU share of an in-process trial on a cluster with GPU nodes when the study does not set one.

    Small trials pack: as many trials per GPU as the node's CPUs allow at cpus_per_trial each, at most
    TRIALS_PER_GPU (the study's networks are small and launch-bound, so a GPU interleaves a few of them; more
    trials per GPU mostly queue behind each other), e.g. 0.25 on an 8-GPU node with 64 CPUs, 0.5 with 16 CPUs,
    1 on a node with as many CPUs per GPU as one trial takes. 0 on a cluster without GPU nodes.
    """
    if view.gpu_node is None:
        return 0.0
    cpus, gpus = view.gpu_node
    per_gpu = int(cpus / gpus // cpus_per_trial) if cpus else 1
    return 1.0 / max(1, min(TRIALS_PER_GPU, per_gpu))


def resolve_gpu_share(study: Any, device: str, view: ClusterView) -> str:
    """Set study.gpus_per_trial where the study left it open; returns how it was decided, for the printed plan.

    train.device=cpu asks for no GPU; train.device=cuda needs a share, and a cluster with GPUs to give one.
    """
    if study.distributed:
        return ""
    if study.gpus_per_trial is None:
        study.gpus_per_trial = 0.0 if device == "cpu" else default_gpu_share(study.cpus_per_trial, view)
        if study.gpus_per_trial:
            cpus, gpus = view.gpu_node or (0, 0)
            return (
                f"default share: {TRIALS_PER_GPU} trials per GPU at most, as many as {_number(cpus)} CPUs per "
                f"{_number(gpus)} GPUs allow at {study.cpus_per_trial} CPU each; set resources.gpus_per_trial "
                "to change it"
            )
    if device == "cuda" and not study.gpus_per_trial:
        raise ConfigError(
            "train.device is 'cuda' but the trials ask Ray for no GPU"
            + ("" if view.gpu_node else " (the cluster has no GPU nodes)"),
            key="resources.gpus_per_trial",
            fix="set resources.gpus_per_trial (e.g. 0.5, or --set resources.gpus_per_trial=0.5), or train.device=auto",
        )
    return ""


def plan_line(request: Request, view: ClusterView, live: int, cap: int) -> str:
    """What the sweep prints before its first trial: each trial's request and how many run at once, and why."""
    now = fits(request.demand, view.now)
    have = ", ".join(f"{_number(view.now[k])} {k}" for k in ("CPU", "GPU") if view.now.get(k)) or "no CPU or GPU"
    grow = ""
    if view.grows_to:
        grow = f", up to {fits(request.demand, view.grows_to)} as it grows ({view.limit_source})"
    elif view.can_grow:
        grow = ", more as an autoscaler adds nodes (its limit is unknown: give --cluster FILE to state it)"
    bound = f"; search.max_concurrent {cap}" if cap else ""
    return (
        f"Resources: each trial asks for {request.describe()}; {min(now, 10**6)} fit in the cluster now "
        f"({have}){grow}{bound}: {live} at once"
    )


def trial_memory_bytes(families: list[str], shape: tuple[int, ...], processes: int = 1) -> float:
    """Expected peak resident memory of one trial: its training processes (seeds side by side, or Ray Train
    workers) at the largest of its families' measured peaks, scaled from 32x32 RGB images by the data's size.

    Evaluation runs in chunks of bounded size (genbench.chunks), so what grows with the data is training's
    batch of activations: the part of a peak above the process's own base is scaled by values per example."""
    values = math.prod(shape)
    if len(shape) != 3:  # vectors: small networks, the process's base is the whole of it
        return float(processes * PROCESS_BASE_BYTES)
    above = max(PEAK_32_RGB_BYTES.get(f, max(PEAK_32_RGB_BYTES.values())) for f in families) - PROCESS_BASE_BYTES
    return processes * (PROCESS_BASE_BYTES + above * values / (3 * 32 * 32))


def memory_line(
    families: list[str], shape: tuple[int, ...] | None, processes: int, live: int, view: ClusterView
) -> str:
    """One warning line when `live` trials at once may need more memory than the cluster's nodes have; else ''."""
    if shape is None or not view.memory_bytes:
        return ""
    each = trial_memory_bytes(families, tuple(shape), processes)
    if live * each <= view.memory_bytes:
        return ""
    fit = int(view.memory_bytes // each)
    fix = (
        f"set search.max_concurrent: {fit} in the study (or give each trial more CPUs: resources.cpus_per_trial) "
        "to run fewer at once"
        if fit
        else "even one may not fit: lower train.batch_size or data.image_size"
    )
    return (
        f"Warning: memory: {live} trials at once may need about {live * each / 2**30:.1f} GiB ({each / 2**30:.1f} "
        f"GiB each for {'/'.join(families)} on data of shape {tuple(shape)}), more than the "
        f"{view.memory_bytes / 2**30:.1f} GiB Ray may use on the cluster's nodes; {fix}"
    )


def read_cluster(profile: Any = None, joined: bool = False) -> ClusterView:
    """The connected Ray cluster as a ClusterView. `joined`: an existing cluster (which may have an autoscaler), not
    the private local Ray; its limit comes from the autoscaler's configuration where Ray has one, else from the
    cluster profile (max_nodes x the node's CPUs and GPUs)."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    now = {k: sum(n.get(k, 0.0) for n in nodes) for k in ("CPU", "GPU")}
    gpu_node = next(((n.get("CPU", 0.0), n["GPU"]) for n in nodes if n.get("GPU")), None)
    if gpu_node is None and profile is not None and profile.gpus_per_node:
        gpu_node = (float(profile.cpus_per_node), float(profile.gpus_per_node))
    can_grow = joined and (profile is None or profile.max_nodes > 0)
    limit, source = _limit(nodes, profile) if can_grow else (None, "")
    return ClusterView(now, gpu_node, limit, can_grow, source, sum(n.get("memory", 0.0) for n in nodes))


def _limit(nodes: list[Resources], profile: Any) -> tuple[Resources | None, str]:
    """The cluster's resources at its autoscaler's limit, and where that figure comes from (None: unknown)."""
    try:  # a private API, as Ray Train reads it: set where the platform reports the cluster's node groups
        from ray._private.state import state

        config = state.get_max_resources_from_cluster_config() or {}
    except Exception:  # noqa: BLE001 - an older or newer Ray without it: fall back to the profile
        config = {}
    if config.get("CPU") or config.get("GPU"):
        return {k: float(config.get(k, 0)) for k in ("CPU", "GPU")}, "the autoscaler's node limits"
    if profile is None or not (profile.max_nodes and profile.cpus_per_node):
        return None, ""
    head = next((n for n in nodes if HEAD_NODE in n), {})
    grown = {
        "CPU": head.get("CPU", 0.0) + profile.max_nodes * profile.cpus_per_node,
        "GPU": head.get("GPU", 0.0) + profile.max_nodes * profile.gpus_per_node,
    }
    gpus = f", {profile.gpus_per_node} GPU" if profile.gpus_per_node else ""
    return grown, f"{profile.name}: {profile.max_nodes} nodes of {profile.cpus_per_node} CPU{gpus}"
