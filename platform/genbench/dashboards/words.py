"""A study's budget and comparison protocol in words, from its study.yaml record (captions, page headers)."""

from __future__ import annotations

from typing import Any


def budget_words(budget: Any, constants: dict[str, Any] | None = None) -> str:
    """study.yaml's budget as a sentence: '8 trials x 600 steps, evaluated every 300 steps, 2 seeds each'; the
    steps and cadence the trials ran (`constants`: a --set of train.steps or eval.every) over the budget's."""
    if not isinstance(budget, dict):
        return str(budget or "")
    constants = constants if isinstance(constants, dict) else {}
    evals = constants.get("eval.count", budget.get("evals"))
    compute = _compute_words(budget, constants)
    steps = constants.get("train.steps", budget.get("steps", "?"))
    every = constants.get("eval.every", budget.get("eval_every"))
    parts = [f"{budget.get('trials', '?')} trials x {compute or f'{steps} steps'}"]
    if evals or compute:
        parts.append(f"evaluated {evals or 10} times")
    elif every:
        parts.append(f"evaluated every {every} steps")
    seeds = int(budget.get("seeds") or 1)
    parts.append(f"{seeds} seeds each" if seeds > 1 else "1 seed each")
    return ", ".join(parts)


def _compute_words(budget: dict[str, Any], constants: dict[str, Any]) -> str:
    """'60 device-seconds' or '2e+12 FLOPs' of a compute budget; '' for a budget in steps."""
    device_s = constants.get("train.device_s", budget.get("device_s"))
    flops = constants.get("train.flops", budget.get("train_flops"))
    return f"{float(device_s):g} device-seconds" if device_s else f"{float(flops):g} FLOPs" if flops else ""


def protocol_words(study: dict[str, Any]) -> str:
    """'random search, the families in turn (3 configurations each), 2 x 20 device-seconds ...; success: ...': how
    the runs of a family comparison were drawn, from study.yaml (older records lack some keys: left out)."""
    raw = study.get("budget")
    budget: dict[str, Any] = raw if isinstance(raw, dict) else {}
    families = [f for f in str(study.get("family", "")).split("+") if f]
    parts = [f"{study.get('algorithm', '?')} search"]
    if study.get("families_draw") == "balanced" and families:
        parts.append(f"the families in turn ({int(budget.get('trials', 0)) // len(families)} configurations each)")
    parts.append(budget_words(budget, study.get("constants")))
    if study.get("scheduler") == "asha":
        parts.append("ASHA early stopping")
    success = study.get("success")
    if isinstance(success, dict):
        side = ">=" if success.get("side") == "at_least" else "<="
        parts.append(f"success: a completed run with {success.get('metric')} {side} {success.get('value'):g}")
    return "; ".join(parts)
