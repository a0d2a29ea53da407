"""Trackers a study opts into (`tracking:` TensorBoard, MLflow, Weights & Biases): Ray Tune's own logger callbacks,
fed each trial's config and its curves as plain scalars. Parsing is light; the callbacks import Ray on use."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator
from typing import Any

from genbench.errors import ConfigError, suggest
from genbench.yamlfile import YamlDoc

# Each tracker's options (what its Ray callback takes), and the package it needs on the machine that drives the sweep
OPTIONS: dict[str, tuple[str, ...]] = {
    "tensorboard": (),
    "mlflow": ("tracking_uri", "experiment_name", "tags"),
    "wandb": ("project", "group", "entity", "mode", "tags", "dir"),
}
PACKAGES = {"tensorboard": "tensorboardX", "mlflow": "mlflow", "wandb": "wandb"}
WANDB_MODES = ("online", "offline", "disabled")
SECTIONS = ("train", "eval", "quality", "likelihood", "stability", "cost")  # what a tracker is fed, by key prefix


def parse_tracking(doc: YamlDoc) -> dict[str, dict[str, Any]]:
    """A study's `tracking:` as {tracker: options}: each tracker is `true` (its defaults), `false` or a mapping of
    its options; anything else is a ConfigError naming the key."""
    raw = doc.data.get("tracking") or {}
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping", key="tracking", source=doc.where("tracking"), fix=_example())
    out = {}
    for name, value in raw.items():
        key = f"tracking.{name}"
        if name not in OPTIONS:
            raise ConfigError("unknown tracker", key=key, source=doc.where(key), fix=suggest(str(name), OPTIONS))
        if value is True or value is False:
            options: dict[str, Any] = {}
        elif isinstance(value, dict):
            options = _options(doc, str(name), value)
        else:
            raise ConfigError(f"expected true, false or a mapping, got {value!r}", key=key, source=doc.where(key))
        if value is not False:
            out[str(name)] = options
    return out


def _options(doc: YamlDoc, name: str, value: dict[str, Any]) -> dict[str, Any]:
    for option, setting in value.items():
        key = f"tracking.{name}.{option}"
        if option not in OPTIONS[name]:
            valid = OPTIONS[name] or ("none: write `true`",)
            raise ConfigError("unknown option", key=key, source=doc.where(key), fix=suggest(str(option), valid))
        expected = dict if option == "tags" and name == "mlflow" else list if option == "tags" else str
        if not isinstance(setting, expected) or (option == "mode" and setting not in WANDB_MODES):
            fix = f"one of {', '.join(WANDB_MODES)}" if option == "mode" else f"a {expected.__name__}"
            raise ConfigError(f"unexpected value {setting!r}", key=key, source=doc.where(key), fix=fix)
    return dict(value)


def _example() -> str:
    return "e.g. tracking: {tensorboard: true, mlflow: {tracking_uri: ./mlruns}, wandb: {project: P, mode: offline}}"


def check_installed(tracking: dict[str, dict[str, Any]]) -> None:
    """Each tracker's package is importable here (the sweep's driver), else a ConfigError saying what to install."""
    for name in tracking:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise ConfigError(
                f"the {name} tracker needs the {PACKAGES[name]} package",
                key=f"tracking.{name}",
                fix=f"pip install {PACKAGES[name]}, or remove tracking.{name}",
            )


def tracker_callbacks(tracking: dict[str, dict[str, Any]], study: str, seeds: int, results: str) -> list[Any]:
    """Ray Tune's logger callback of each tracker, fed scalar results (scalar_results). TensorBoard writes beside
    each trial's Ray state under `results`/ray/; W&B's runs go under `results` too unless its `dir` says otherwise."""
    return [_callback(name, options, study, seeds, results) for name, options in tracking.items()]


def _callback(name: str, options: dict[str, Any], study: str, seeds: int, results: str) -> Any:
    if name == "tensorboard":
        from ray.tune.logger import TBXLoggerCallback

        return _fed(TBXLoggerCallback, name, seeds)()
    if name == "mlflow":
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        return _fed(MLflowLoggerCallback, name, seeds)(**{"experiment_name": study, **options})
    from ray.air.integrations.wandb import WandbLoggerCallback

    if options.get("mode") in ("offline", "disabled"):  # then Ray's set-up asks for no API key (it reads WANDB_MODE)
        os.environ["WANDB_MODE"] = options["mode"]
    where = {"dir": os.path.abspath(results)} if "://" not in results else {}
    return _fed(WandbLoggerCallback, name, seeds)(**{"project": study, **where, **options})


def _fed(base: type, name: str, seeds: int) -> type:
    """`base` (a Ray logger callback) given each history step of a trial's report, then the report's own metrics,
    as scalar results at their training step, instead of the report's lists of rows (which it cannot log). A
    tracker that cannot start (a wrong URI, a refused login) ends the sweep with one error naming its key."""

    class Fed(base):
        def setup(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().setup(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 (the tracker's own errors, whatever their type)
                raise ConfigError(
                    f"cannot start: {type(exc).__name__}: {str(exc)[:500]}",
                    key=f"tracking.{name}",
                    fix="check its options (docs/tracking.md), or remove it",
                ) from None

        def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
            for scalars in scalar_results(result, seeds):
                super().log_trial_result(iteration, trial, scalars)

    Fed.__name__ = Fed.__qualname__ = base.__name__
    return Fed


def scalar_results(result: dict[str, Any], seeds: int) -> Iterator[dict[str, Any]]:
    """One Tune report as tracker results: each history entry's train.* and eval.* at its step (per seed when the
    trial trains several: 'seed_1/train.loss'), then the report's own metrics (the seeds' mean evaluation, the
    final quality, stability and cost) at the report's step. `timesteps_total` is the step the loggers plot against."""
    base = {"training_iteration": result.get("training_iteration", 0)}
    for entry in result.get("history") or []:
        prefix = f"seed_{entry.get('seed')}/" if seeds > 1 else ""
        values = {f"{prefix}{k}": v for k, v in _scalars(entry)}
        if values:
            yield {**base, "timesteps_total": int(entry["step"]), **values}
    own = dict(_scalars(result))
    if own:
        yield {**base, "timesteps_total": int(result.get("step") or 0), **own}


def _scalars(values: dict[str, Any]) -> Iterator[tuple[str, float]]:
    for key, value in values.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and key.partition(".")[0] in SECTIONS and math.isfinite(value):
            yield key, value
