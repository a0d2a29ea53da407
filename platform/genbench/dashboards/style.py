"""Colour-blind-safe palette (Okabe-Ito) and the colours of trial outcomes."""
from __future__ import annotations

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442"]
STATUS_COLOURS = {"completed": "#0072B2", "diverged": "#D55E00", "early_stopped": "#E69F00", "failed": "#7F7F7F"}
STATUS_SYMBOLS = {"completed": "circle", "diverged": "x", "early_stopped": "triangle-down", "failed": "square"}
LAYOUT = dict(template="plotly_white", height=430, margin=dict(l=70, r=30, t=60, b=60),
              font=dict(family="system-ui, -apple-system, Segoe UI, sans-serif", size=13))


def colour_map(names: list[str]) -> dict[str, str]:
    """The same name gets the same colour in every figure of a page."""
    return {name: OKABE_ITO[i % len(OKABE_ITO)] for i, name in enumerate(sorted(set(names)))}
