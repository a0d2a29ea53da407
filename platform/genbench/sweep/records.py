"""The records a study writes besides its curves: a trial's row and study.yaml (light: `genbench train` uses both)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from genbench.config import from_flat, to_flat
from genbench.results.schema import SCHEMA_VERSION
from genbench.sweep.spec import Budget, Study

if TYPE_CHECKING:
    from genbench.cluster.profiles import Profile
    from genbench.sweep.tuner import Plan


def trial_row(study: Study, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The `trials` row: identity, status, every resolved config.* key, then the final metrics."""
    flat = to_flat(from_flat(config))
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "config_id": result.get("config_id", trial_id),
        "study": study.name,
        "family": flat["family"],
        "status": result.get("status", "failed"),
        "seed": flat["seed"],
        "error": result.get("error", ""),
        "start_time": result.get("start_time"),
        "end_time": result.get("end_time", time.time()),
    }
    row.update({f"config.{k}": v for k, v in flat.items() if k not in ("family", "seed")})
    row.update(
        {
            k: v
            for k, v in result.items()
            if k.split(".")[0] in ("quality", "likelihood", "stability", "cost", "provenance")
        }
    )
    row.update({k: result[k] for k in (*RUN_COLUMNS, "samples") if k in result})  # samples: a file, not a column
    row["steps"] = result.get("steps", result.get("step", 0))
    return row


RUN_COLUMNS = ("train_path", "workers", "worker_nodes", "resumed_from")  # in-process or Ray Train; where; restarts


def study_record(
    study: Study, budget: Budget, constants: dict[str, Any], address: str | None = None, plan: Plan | None = None
) -> dict[str, Any]:
    """study.yaml: the resolved study, the budget used, the cluster and resources, and the versions that produced
    the results."""
    from importlib.metadata import version  # not `import ray, optuna`: seconds that `genbench train` need not wait

    import torch

    import genbench

    return {
        "study": study.name,
        "family": study.family,
        "source": study.source,
        "objectives": [{"metric": m, "mode": d} for m, d in study.objectives],
        "success": dict(zip(("metric", "side", "value"), study.success)) if study.success else None,
        "budget": vars(budget),
        "algorithm": study.algorithm,
        "families_draw": study.family_draw if len(study.families) > 1 else None,
        "scheduler": study.scheduler,
        "search_seed": study.search_seed,
        "constants": constants,
        "fixed_by_family": study.family_fixed or None,
        "space": study.raw.get("space", {}),
        "cluster": _cluster_record(address, plan.profile if plan else None),
        "resources": plan.record(study) if plan else None,
        "schema_version": SCHEMA_VERSION,
        "versions": {
            "genbench": genbench.__version__,
            "torch": str(torch.__version__),
            "ray": version("ray"),
            "optuna": version("optuna"),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cluster_record(address: str | None, profile: Profile | None) -> dict[str, Any] | str:
    joined = {"ray_address": address} if address and address != "local" else {}
    if profile is not None:
        return {**profile.record(), **joined}
    return joined or "local"
