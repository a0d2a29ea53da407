"""Every final metric a trial row carries: its name, its better direction and a one-line definition."""

from __future__ import annotations

from typing import NamedTuple


class Metric(NamedTuple):
    better: str  # 'max' or 'min'
    doc: str


METRICS: dict[str, Metric] = {
    "quality.modes": Metric(
        "max",
        "modes covered: mixture components with >= 1 high-quality sample (toy), or "
        "classes the classifier finds among the samples (digits 10, stacked 1,000)",
    ),
    "quality.hq_fraction": Metric("max", "fraction of samples within 3 sigma of their nearest mode (toy)"),
    "quality.mode_kl": Metric(
        "min",
        "KL(mode histogram || uniform) of high-quality samples (toy) or predicted "
        "classes (images); NaN when no toy sample is high quality",
    ),
    "quality.swd": Metric("min", "sliced Wasserstein-1 distance to the test split (toy data; 256 directions)"),
    "quality.fd": Metric(
        "min",
        "Frechet distance of image features (digit classifier, FID Inception pool3, a "
        "contrastive CNN learned on the data, or pixels: see provenance.extractor) to the "
        "test split",
    ),
    "quality.kid": Metric(
        "min",
        "kernel inception distance (unbiased MMD^2, cubic kernel) on the same features; "
        "quality.kid_std is its spread over 50 subsets",
    ),
    "quality.precision": Metric("max", "fraction of samples inside the real k-NN manifold (k=3)"),
    "quality.recall": Metric("max", "fraction of real samples inside the generated k-NN manifold (k=3)"),
    "quality.density": Metric("max", "real k-NN balls (k=5) containing each sample, averaged and divided by k"),
    "quality.coverage": Metric("max", "fraction of real samples whose k-NN ball (k=5) holds a sample"),
    "likelihood.nll": Metric(
        "min", "negative log-likelihood of the test split, nats per example (exact or a bound: see likelihood.method)"
    ),
    "likelihood.bpd": Metric("min", "likelihood.nll in bits per dimension (images; discrete values)"),
    "stability.diverged": Metric(
        "min",
        "the run ended on a non-finite or exploding loss, gradient or weight, or "
        "on non-finite samples at an evaluation",
    ),
    "stability.steps_to_diverge": Metric(
        "max",
        "first step whose scalars were non-finite or exploded (or the "
        "evaluation step whose samples were not finite); -1 if none",
    ),
    "stability.grad_norm_max": Metric("min", "largest gradient norm of any network over the run"),
    "stability.oscillation": Metric(
        "min",
        "std / |mean| of the primary quality metric over the last third of "
        "the evaluations (components covered on toy data, fd on images)",
    ),
    "stability.best_to_final_gap": Metric(
        "min", "how far the primary quality metric fell from its best evaluation to the final one"
    ),
    "stability.seed_std": Metric(
        "min",
        "sample std of the study's first objective across the seeds of one "
        "configuration (the same value on each seed's row)",
    ),
    "stability.seed_cv": Metric("min", "stability.seed_std / |mean| across the seeds of one configuration"),
    "stability.success_rate": Metric(
        "max",
        "fraction of a configuration's seeds that trained to the end "
        "(status completed) and reached the study's success threshold, "
        "if it sets one",
    ),
    "cost.wall_s": Metric("min", "wall-clock seconds of the run, data and final evaluation included"),
    "cost.device_s": Metric(
        "min",
        "GPU-seconds of the run (wall seconds times the GPUs it held: its share of a "
        "shared GPU) on CUDA, else CPU core-seconds of the run's process (user + system "
        "time)",
    ),
    "cost.params": Metric("min", "trainable parameters of all networks"),
    "cost.sample_per_s": Metric("max", "samples per second generating one evaluation batch"),
    "cost.train_flops": Metric("min", "FLOPs of one training step (torch FlopCounterMode) times the steps taken"),
    "cost.peak_mem_bytes": Metric(
        "min",
        "peak resident memory of the run's process from the run's start (CPU; "
        "Linux's VmHWM, reset per run) or peak CUDA allocation (GPU)",
    ),
    "cost.sample_nfe": Metric("min", "network evaluations per sample (sequential cost of sampling)"),
}
