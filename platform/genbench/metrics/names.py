"""Every final metric a trial row carries: its name, its better direction and a one-line definition."""
from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    better: str  # 'max' or 'min'
    doc: str


METRICS: dict[str, Metric] = {
    "quality.modes": Metric("max", "modes of a known mixture with >= 1 high-quality sample (2,500 samples)"),
    "quality.hq_fraction": Metric("max", "fraction of samples within 3 sigma of their nearest mode"),
    "quality.mode_kl": Metric("min", "KL(high-quality mode histogram || uniform); NaN when no sample is HQ"),
    "likelihood.nll": Metric("min", "negative log-likelihood of the test split, nats per example "
                                   "(exact or a bound: see likelihood.method)"),
    "likelihood.bpd": Metric("min", "likelihood.nll in bits per dimension (images; discrete values)"),
    "stability.diverged": Metric("min", "the run ended on a non-finite or exploding loss, gradient or weight"),
    "stability.steps_to_diverge": Metric("max", "first step whose scalars were non-finite or exploded; -1 if none"),
    "stability.grad_norm_max": Metric("min", "largest gradient norm of any network over the run"),
    "cost.wall_s": Metric("min", "wall-clock seconds of the run, data and final evaluation included"),
    "cost.device_s": Metric("min", "CPU core-seconds of the run's process (user + system time)"),
    "cost.params": Metric("min", "trainable parameters of all networks"),
    "cost.sample_per_s": Metric("max", "samples per second generating one evaluation batch"),
    "cost.sample_nfe": Metric("min", "network evaluations per sample (sequential cost of sampling)"),
}
