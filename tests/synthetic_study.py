"""Generated results of a made-up study (every family, several seeds) to test and time the dashboards with."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from genbench.results.analysis import budget_curve, configurations, early_stopping_savings, pareto_front
from genbench.results.store import ResultsStore

FAMILIES = ("gan", "vae", "diffusion", "autoregressive", "flow")
NFE = {"gan": 1, "vae": 1, "diffusion": 100, "autoregressive": 2, "flow": 1}
PEAK_MIB = {"gan": 420, "vae": 450, "diffusion": 600, "autoregressive": 380, "flow": 520}  # toy-data scale
SAMPLERS = {
    "gan": "generator pass",
    "vae": "prior -> decoder pass",
    "autoregressive": "one value at a time (2 passes)",
    "flow": "inverse flow pass",
}
LOSSES = ("non_saturating", "wasserstein", "hinge", "least_squares")


def _settings(rng: np.random.Generator, family: str) -> dict[str, Any]:
    if family == "diffusion":
        sampler = str(rng.choice(["ddpm", "ddim"]))
        return {
            "config.optim.lr": float(10 ** rng.uniform(-4.5, -2)),
            "config.diffusion.sampler": sampler,
            "config.diffusion.ddim_steps": int(rng.choice([10, 20, 50])) if sampler == "ddim" else 100,
        }
    if family != "gan":
        return {"config.optim.lr": float(10 ** rng.uniform(-4.5, -2))}
    return {
        "config.gan.loss": str(rng.choice(LOSSES)),
        "config.gan.penalty": str(rng.choice(["none", "r1"])),
        "config.gan.spectral_norm": bool(rng.random() < 0.5),
        "config.optim.lr_g": float(10 ** rng.uniform(-5, -2)),
        "config.optim.lr_d": float(10 ** rng.uniform(-5, -2)),
    }


def _run(rng: np.random.Generator, family: str, settings: dict[str, Any], steps: int) -> dict[str, Any]:
    lr = settings.get("config.optim.lr_d", settings.get("config.optim.lr", 1e-3))
    diverged = rng.random() < (0.5 if family == "gan" and lr > 2e-3 else 0.08)
    modes = float(np.clip(rng.normal(18 if family != "gan" else 15, 4), 0, 25))
    row = {
        "family": family,
        "status": "diverged" if diverged else "completed",
        "steps": steps // 3 if diverged else steps,
        "quality.modes": np.nan if diverged else modes,
        "quality.mode_kl": float(rng.uniform(0.01, 1.5)),
        "quality.swd": float(rng.uniform(0.05, 1)),
        "stability.oscillation": float(rng.uniform(0, 0.5)),
        "stability.best_to_final_gap": float(rng.uniform(0, 5)),
        "stability.diverged": diverged,
        "cost.device_s": float(rng.uniform(20, 200) * (3 if family == "diffusion" else 1)),
        "cost.wall_s": float(rng.uniform(10, 100)),
        "cost.sample_per_s": float(10 ** rng.uniform(3, 5) / NFE[family]),
        "cost.sample_nfe": float(settings.get("config.diffusion.ddim_steps", NFE[family])),
        "cost.peak_mem_bytes": PEAK_MIB[family] * 2.0**20,  # no random draw: the rows after it stay the same
        "provenance.sampler": _sampler(family, settings),
        **settings,
    }
    if not diverged:
        row["samples"] = _ring_samples(rng, modes)
    if family != "gan":
        row.update(
            {
                "likelihood.nll": float(rng.uniform(1.5, 3)),
                "likelihood.method": "exact" if family in ("flow", "autoregressive") else "bound",
            }
        )
    return row


def _sampler(family: str, settings: dict[str, Any]) -> str:
    if family == "diffusion":
        return f"{settings['config.diffusion.sampler']} ({settings['config.diffusion.ddim_steps']} steps)"
    return SAMPLERS[family]


def _ring_samples(rng: np.random.Generator, modes: float, n: int = 300) -> dict[str, str]:
    """An encoded .npy of n points near round(modes) of the 8 ring modes: a picture of partial mode coverage."""
    import base64

    from genbench.results.samples import npy_bytes

    angles = 2 * np.pi * rng.integers(0, max(1, min(8, round(modes / 3))), n) / 8
    points = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 2 + rng.normal(0, 0.05, (n, 2))  # (n, 2)
    return {"ext": "npy", "data": base64.b64encode(npy_bytes(points.astype(np.float32))).decode()}


def _history(rng: np.random.Generator, trial_id: str, row: dict[str, Any], eval_every: int) -> list[dict[str, Any]]:
    out = []
    for step in range(eval_every // 2, row["steps"] + 1, eval_every // 2):
        h: dict[str, Any] = {"trial_id": trial_id, "step": step}
        if row["family"] == "gan":
            h.update({"train.loss_d": float(rng.normal(1.2, 0.2)), "train.grad_norm_d": float(rng.uniform(0.1, 10))})
        else:
            h["train.loss"] = float(3 / (1 + step / 200) + rng.normal(0, 0.05))
        if step % eval_every == 0:
            h.update(
                {
                    "eval.modes": float(min(25, step / row["steps"] * 20 + rng.normal(0, 2))),
                    "eval.swd": float(rng.uniform(0.05, 1)),
                }
            )
        out.append(h)
    return out


def synthetic_study(
    out: str,
    configs: int = 20,
    seeds: int = 3,
    steps: int = 1000,
    eval_every: int = 200,
    families: tuple[str, ...] = FAMILIES,
    seed: int = 0,
) -> ResultsStore:
    """Write `configs` configurations x `seeds` runs, their history, study.yaml, summary.yaml and a budget curve."""
    rng = np.random.default_rng(seed)
    store = ResultsStore(out)
    objectives = [{"metric": "quality.modes", "mode": "max"}, {"metric": "stability.seed_cv", "mode": "min"}]
    space = {"optim.lr": {}} if "gan" not in families else {"gan.loss": {}, "optim.lr_g": {}, "optim.lr_d": {}}
    store.write_study(
        {
            "study": "synthetic",
            "family": list(families),
            "objectives": objectives,
            "budget": {"trials": configs, "steps": steps, "seeds": seeds},
            "space": space,
        }
    )
    rows: list[dict[str, Any]] = []
    for c in range(configs):
        family = families[c % len(families)]
        settings = _settings(rng, family)
        config_rows = [
            {
                "trial_id": f"c{c:04d}s{s}",
                "config_id": f"c{c:04d}",
                "seed": s,
                "study": "synthetic",
                **_run(rng, family, settings, steps),
            }
            for s in range(seeds)
        ]
        _seed_stats(config_rows)
        history = [h for r in config_rows for h in _history(rng, r["trial_id"], r, eval_every)]
        store.write_config(f"c{c:04d}", config_rows, history)
        rows += [{k: v for k, v in r.items() if k != "samples"} for r in config_rows]
    _write_summary(store, rows, objectives, steps, list(space))
    return store


def _seed_stats(rows: list[dict[str, Any]]) -> None:
    values = np.array([r["quality.modes"] for r in rows], dtype=float)
    finite = values[np.isfinite(values)]
    std = float(finite.std(ddof=1)) if len(finite) > 1 else np.nan
    cv = std / abs(float(finite.mean())) if len(finite) > 1 and finite.mean() else np.nan
    ok = sum(r["status"] == "completed" for r in rows) / len(rows)
    for r in rows:
        r.update({"stability.seed_std": std, "stability.seed_cv": cv, "stability.success_rate": ok})


def _write_summary(
    store: ResultsStore, rows: list[dict[str, Any]], objectives: list[dict[str, str]], steps: int, searched: list[str]
) -> None:
    import pandas as pd

    trials = pd.DataFrame(rows)
    table = configurations(trials)
    pairs = [(o["metric"], o["mode"]) for o in objectives]
    front = pareto_front(table, pairs)
    summary = {
        "configurations": len(table),
        "runs": len(trials),
        "pareto_front": [{"config_id": c} for c in front],
        "importances": {"quality.modes": dict(zip(searched, (0.5, 0.3, 0.2)))},  # made up, of its keys
        "importance_method": "PED-ANOVA",
        "early_stopping": early_stopping_savings(trials, steps),
    }
    store.write_bytes("", "summary.yaml", yaml.safe_dump(summary, sort_keys=False).encode())
    curve = budget_curve(table, "quality.modes", "max", "family")
    store.write_table("budget_curve.parquet", pa.Table.from_pandas(curve, preserve_index=False))
