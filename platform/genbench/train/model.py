"""A run's final model kept with its results (models/<trial_id>.pt), and that model rebuilt to sample and score again.

The file holds what a checkpoint's `family` entry holds (genbench.train.checkpoint), for the modules that sampling
and scoring use (Parts.kept: no optimiser, no discriminator, no raw weights beside an EMA copy), and the run's
resolved config as JSON: torch.load(weights_only=True) reads it. The model is rebuilt as a run builds it, from the
config and the same data set (which gives a family its shapes and data-derived constants), then given the weights.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import torch

from genbench.config import RunConfig, from_flat, to_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import ConfigError, GenbenchError
from genbench.families import FAMILIES
from genbench.families.base import Family
from genbench.train.device import apply_backends, place, resolve
from genbench.train.evaluate import Evaluator, eval_noise

MODEL_FORMAT = 1  # the file's "genbench_model" entry; a reader refuses another
EVALUATE_KEYS = ("eval.n_samples", "eval.features", "eval.inception_weights")  # what `evaluate` may change
DEVICE_KEYS = ("train.device", "train.threads")  # where a kept model computes (its weights are the same anywhere)


def model_state(family: Family, cfg: RunConfig) -> dict[str, Any]:
    """The content of a model file: the kept modules' state dicts on the CPU, and the resolved run config."""
    weights = {
        name: {k: v.detach().cpu() for k, v in module.state_dict().items()}
        for name, module in family.parts().kept().items()
    }
    return {"genbench_model": MODEL_FORMAT, "family": weights, "config": json.dumps(to_flat(cfg))}


def encode(family: Family, cfg: RunConfig) -> dict[str, str]:
    """{'ext': 'pt', 'data': base64} of the model file: text, because the row carrying it travels in a Ray Tune
    result and in Ray Train's row.json to the process that writes results (ResultsStore.write_config)."""
    out = io.BytesIO()
    torch.save(model_state(family, cfg), out)
    return {"ext": "pt", "data": base64.b64encode(out.getvalue()).decode()}


def read(data: bytes, source: str) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """(the run's flat config, {module name: state dict}) of a model file's bytes; tensors and plain values only."""
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # truncated, or not a torch file: torch raises several kinds
        raise GenbenchError(f"{source}: not a readable model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("genbench_model") != MODEL_FORMAT:
        found = state.get("genbench_model") if isinstance(state, dict) else None
        raise GenbenchError(
            f"{source}: not a genbench model file of format {MODEL_FORMAT} (found {found!r}); it was written by "
            "another genbench version: read it with that version"
        )
    return json.loads(state["config"]), state["family"]


@dataclass
class Model:
    """A kept model rebuilt: its run's config, the family holding its weights, and the data set it trained on."""

    trial_id: str
    cfg: RunConfig
    family: Family
    data: Dataset

    @property
    def config(self) -> dict[str, Any]:
        """Every run key of the run, typed (the trials row's config.* values)."""
        return to_flat(self.cfg)

    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """n samples on the CPU: (n, D), or images (n, C, H, W) in [0, 1]. Their noise is the run's evaluation
        stream (eval_noise) for `seed`, by default the run's: with n = eval.n_samples they are the samples its final
        evaluation scored (on the device and thread count it ran with)."""
        if n < 1:
            raise ConfigError(f"expected a number of samples >= 1, got {n}", key="-n", fix="e.g. -n 64")
        with eval_noise(self.cfg.seed if seed is None else seed, self.family):
            return self.family.sample(n).float().cpu()

    def evaluate(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """quality.* and provenance.* of the model under the run's eval.* settings, with `overrides` (flat eval.*
        keys) replacing some: the run's own settings give the row's final quality again."""
        ev = self.with_eval(overrides or {}).eval
        evaluator = Evaluator(self.data, ev.n_samples, ev.features, ev.inception_weights, self.cfg.seed)
        scores = evaluator(self.family)
        return {**{f"quality.{k}": v for k, v in scores.items()}, **evaluator.provenance()}

    def with_eval(self, overrides: dict[str, Any]) -> RunConfig:
        """The run's config with eval.* overrides, each checked as --set checks it."""
        check_keys(overrides, EVALUATE_KEYS)
        flat = {**self.config, **overrides}
        return from_flat(flat, dict.fromkeys(overrides, "--set"))


def check_keys(overrides: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Only the keys that do not change the model: its data, networks and training are its weights' own."""
    for key in overrides:
        if key not in allowed:
            raise ConfigError(
                "is not a setting a kept model can change (its data, networks and training made its weights)",
                key=key,
                source="--set",
                fix=f"give one of {', '.join(allowed)}; to change others, train the configuration again",
            )


def load(data: bytes, trial_id: str, source: str, device: str | None = None) -> Model:
    """The model of a model file's bytes, rebuilt on its run's data set and placed on its run's train.device, or on
    `device` ('cpu', 'cuda', 'auto'). The caller's random stream is left as it was."""
    flat, weights = read(data, source)
    where = dict.fromkeys(flat, source)
    if device is not None:
        flat["train.device"], where["train.device"] = device, "device"
    cfg = from_flat(flat, where)
    placement = resolve(cfg.train)  # a device this machine lacks fails here, before the data loads
    dataset = load_dataset(cfg.data)
    with torch.random.fork_rng(devices=[]):  # a family draws its initial weights, replaced below
        family = FAMILIES.get(cfg.family).build(cfg, dataset)
    load_weights(family, weights, source)
    apply_backends(placement)  # TF32 as the run had it: a GPU score depends on it
    return Model(trial_id, cfg, place(family, placement), dataset)


def load_weights(family: Family, weights: dict[str, Any], source: str) -> None:
    """Each kept module's weights; the file must hold exactly the modules the family built from its config keeps."""
    kept = family.parts().kept()
    missing, unknown = sorted(set(kept) - set(weights)), sorted(set(weights) - set(kept))
    if missing or unknown:
        raise GenbenchError(
            f"{source}: its networks do not match the family built from its config (missing: {missing or 'none'}; "
            f"not kept by this family: {unknown or 'none'}); read it with the genbench version that wrote it"
        )
    for name, module in kept.items():
        module.load_state_dict(weights[name])
