"""Colour-blind-safe palette (Okabe-Ito), the colours of trial outcomes, and the unit of every result column."""

from __future__ import annotations

from typing import Any

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
STATUS_COLOURS = {"completed": "#0072B2", "diverged": "#D55E00", "early_stopped": "#E69F00", "failed": "#7F7F7F"}
STATUS_SYMBOLS = {"completed": "circle", "diverged": "x", "early_stopped": "triangle-down", "failed": "square"}
LAYOUT: dict[str, Any] = dict(
    template="plotly_white",
    height=430,
    margin=dict(l=70, r=30, t=60, b=60),
    font=dict(family="system-ui, -apple-system, Segoe UI, sans-serif", size=13),
)

UNITS = {
    "modes": "modes covered",
    "hq_fraction": "fraction of samples",
    "mode_kl": "nats",
    "swd": "data units",
    "fd": "squared feature distance",
    "kid": "squared MMD",
    "kid_std": "squared MMD",
    "precision": "fraction",
    "recall": "fraction",
    "density": "ratio",
    "coverage": "fraction",
    "nll": "nats per example",
    "bpd": "bits per dimension",
    "diverged": "0/1",
    "steps_to_diverge": "training steps",
    "grad_norm_max": "L2 norm",
    "oscillation": "std / |mean|",
    "best_to_final_gap": "units of the quality metric",
    "seed_std": "units of the objective",
    "seed_cv": "std / |mean|",
    "success_rate": "fraction of seeds",
    "wall_s": "s",
    "device_s": "device-seconds",
    "params": "parameters",
    "sample_per_s": "samples / s",
    "train_flops": "FLOPs",
    "peak_mem_bytes": "bytes",
    "sample_nfe": "network evaluations / sample",
    "usd": "USD",
    "lr_g": "Adam learning rate",
    "lr_d": "Adam learning rate",
    "lr": "Adam learning rate",
    "loss_d": "loss, window mean",
    "loss_g": "loss, window mean",
    "loss": "loss, window mean",
    "grad_norm_d": "L2 norm, window mean",
    "grad_norm_g": "L2 norm, window mean",
    "grad_norm": "L2 norm, window mean",
    "penalty": "penalty, window mean",
    "d_real": "D output, window mean",
    "d_fake": "D output, window mean",
    "elbo": "nats, window mean",
    "kl": "nats, window mean",
    "recon": "nats, window mean",
    "step": "training steps",
    "steps": "training steps",
    "seed": "seed",
}


def unit(column: str) -> str:
    """The unit of a result column ('quality.modes' -> 'modes covered'); 'setting' for other config keys."""
    leaf = column.rsplit(".", 1)[-1]
    if leaf in UNITS:
        return UNITS[leaf]
    return "setting" if column.startswith("config.") else "value"


FAMILY_COLOURS = {
    "gan": OKABE_ITO[3],
    "vae": OKABE_ITO[4],
    "diffusion": OKABE_ITO[1],
    "autoregressive": OKABE_ITO[0],
    "flow": OKABE_ITO[2],
}
# Names that are not groups of runs (objectives in the importance bars) take colours no family has.
NEUTRAL = ["#444444", "#AAAAAA", OKABE_ITO[5], OKABE_ITO[7]]


def family_of(name: str) -> str | None:
    """The family a group label belongs to: 'vae' or 'vae: prior -> decoder pass' -> 'vae'; None for others."""
    head = str(name).split(":", 1)[0]
    return head if head in FAMILY_COLOURS else None


def colour_map(names: list[str]) -> dict[str, str]:
    """The same name gets the same colour in every figure of a page: a family's runs (also 'family: sampler'
    labels) its fixed colour, other names the palette in sorted order."""
    others = sorted({n for n in names if family_of(n) is None})
    fixed = {n: FAMILY_COLOURS[f] for n in set(names) if (f := family_of(n)) is not None}
    return {**fixed, **{name: OKABE_ITO[i % len(OKABE_ITO)] for i, name in enumerate(others)}}


def neutral_map(names: list[str]) -> dict[str, str]:
    """Colours for names that are not families (objectives), none of them a family's colour."""
    unique = list(dict.fromkeys(names))
    return {name: NEUTRAL[i % len(NEUTRAL)] for i, name in enumerate(unique)}
