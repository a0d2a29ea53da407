"""Quality and likelihood of a trained family on its data set, with the provenance of every score, and its cost."""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from genbench.data import Dataset
from genbench.families.base import Family, family_device
from genbench.metrics.features import (
    KID_SUBSETS,
    density_coverage,
    frechet_distance,
    kid,
    kid_subset_size,
    precision_recall,
    sliced_wasserstein,
)
from genbench.metrics.modes import mode_metrics
from genbench.train.device import synchronize

NLL_MAX_EXAMPLES, NLL_BATCH = 2000, 500  # bounded cost of the final likelihood evaluation
EVAL_STREAM = 1_000_003  # evaluation noise is seeded with the run's seed plus this: a stream apart from training's


@contextlib.contextmanager
def eval_noise(seed: int | None, family: Family) -> Iterator[None]:
    """The random draws inside (`family`'s sampling noise, on its device) from a stream of their own, seeded from
    the run's seed, and training's stream left where it was: a score is then a function of the weights, the seed and
    the eval.* settings, which `genbench evaluate` reproduces from a kept model. None: the global stream as it is."""
    if seed is None:
        yield
        return
    device = family_device(family)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed + EVAL_STREAM)
        yield


class Scores(dict[str, float]):
    """Quality scores of one evaluation (metric name -> value), and how many of its n samples were not finite.

    The count travels beside the scores, not among them, so that the row's quality.* columns stay the metrics
    (a dict subclass: it survives Ray Train's broadcast of rank 0's evaluation). A sample holding a NaN or inf
    means the model diverged (its outputs overflowed, or its weights went non-finite), and the training loop
    ends the run as `diverged` on it.
    """

    def __init__(self, values: dict[str, float], nonfinite: int = 0, n: int = 0) -> None:
        super().__init__(values)
        self.nonfinite, self.n = nonfinite, n


class Evaluator:
    """Scores samples of a family against a data set's test split; reference features are computed once."""

    def __init__(
        self,
        data: Dataset,
        n_samples: int,
        features: str = "auto",
        inception_weights: str = "",
        seed: int | None = None,
    ) -> None:
        """features / inception_weights: the run's eval.features and eval.inception_weights (images only); seed: the
        run's, which seeds every evaluation's samples (eval_noise; None: they draw from the global stream)."""
        self.data, self.n_samples, self.seed = data, n_samples, seed
        self.extractor = None
        self.last_samples: torch.Tensor | None = None  # of the latest call: the final model's, once training ends
        self.primary: tuple[str, str] = (
            ("modes", "max") if data.modes is not None else ("fd", "min") if data.is_image else ("swd", "min")
        )
        if data.is_image:
            from genbench.metrics.extractors import extractor_for

            self.extractor = extractor_for(data, features, inception_weights)
            self.real = self.extractor.features(data.test)  # (M, F) reference features

    def provenance(self) -> dict[str, Any]:
        """How every quality score of this run was computed; two scores compare only if these agree."""
        name = self.extractor.name if self.extractor else "none (data space)"
        out = {
            "provenance.extractor": name,
            "provenance.reference": f"{self.data.name} test split",
            "provenance.n_reference": len(self.data.test),
            "provenance.n_generated": self.n_samples,
            "provenance.feature_dim": self.extractor.dim if self.extractor else None,
        }
        if self.extractor:  # KID's estimate depends on how many subsets of how many rows it averages
            out.update(
                {
                    "provenance.kid_subsets": KID_SUBSETS,
                    "provenance.kid_subset_size": kid_subset_size(len(self.data.test), self.n_samples),
                }
            )
        return out

    def __call__(self, family: Family) -> Scores:
        """Quality metrics (names without prefix) of n_samples samples; never raises for a diverged model."""
        with eval_noise(self.seed, family):
            samples = family.sample(self.n_samples).float().cpu()  # (n, D) or (n, C, H, W); metrics run on the CPU
        self.last_samples = samples
        nonfinite = int((~samples.flatten(1).isfinite().all(dim=1)).sum())  # samples holding a NaN or inf
        return Scores(self._toy(samples) if self.extractor is None else self._images(samples), nonfinite, len(samples))

    def _toy(self, samples: torch.Tensor) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.data.modes is not None and self.data.sigma is not None:
            out.update(mode_metrics(samples, self.data.modes, self.data.sigma))
        out["swd"] = sliced_wasserstein(samples, self.data.test)
        return out

    def _images(self, samples: torch.Tensor) -> dict[str, float]:
        if not torch.isfinite(samples).all():  # a diverged model: no feature statistics are meaningful
            return {"fd": math.nan, "kid": math.nan}
        fake = self.extractor.features(samples.clamp(0, 1))
        kid_mean, kid_std = kid(self.real, fake)
        precision, recall = precision_recall(self.real, fake)
        density, coverage = density_coverage(self.real, fake)
        out = {
            "fd": frechet_distance(self.real, fake),
            "kid": kid_mean,
            "kid_std": kid_std,
            "precision": precision,
            "recall": recall,
            "density": density,
            "coverage": coverage,
        }
        if self.extractor.classify is not None:
            out.update(class_modes(self.extractor.classify(samples), self.extractor.num_classes))
        return out


def class_modes(classes: torch.Tensor, num_classes: int) -> dict[str, float]:
    """quality.modes (classes generated at least once) and quality.mode_kl (KL of the class histogram || uniform)."""
    p = torch.bincount(classes, minlength=num_classes).double() / len(classes)
    nz = p > 0
    return {"modes": float(nz.sum()), "mode_kl": float((p[nz] * (p[nz] * num_classes).log()).sum())}


@torch.no_grad()
def likelihood(family: Family, data: Dataset) -> dict[str, Any]:
    """likelihood.nll (nats per example) on the test split, bpd for images, and how it was computed.

    A diverged model's is NaN (or inf), computed like any other: the honest value, never an exception."""
    if family.nll_method is None:  # no likelihood, or one switched off (diffusion's bound is costly)
        return {}
    test, device = data.test[:NLL_MAX_EXAMPLES], family_device(family)
    # fp32 on the family's device: never under bf16 autocast (nll sums every value's log-probability; see Autocast)
    nll = torch.cat([family.nll(chunk.to(device)).cpu() for chunk in test.split(NLL_BATCH)]).mean().item()
    out: dict[str, Any] = {
        "likelihood.nll": nll,
        "likelihood.method": family.nll_method,
        "likelihood.n_test": len(test),
    }
    if data.is_image:
        out["likelihood.bpd"] = nll / (data.dim * math.log(2))
    return out


def sample_cost(family: Family, n_samples: int) -> dict[str, Any]:
    """cost.sample_per_s for one batch of n_samples (wall clock), cost.sample_nfe, and provenance.sampler: which
    sampler was timed (a family may have several, e.g. DDPM or DDIM at k steps)."""
    device = family_device(family)
    synchronize(device)
    start = time.perf_counter()
    family.sample(n_samples)
    synchronize(device)  # GPU sampling is asynchronous: the time counts once the samples exist
    return {
        "cost.sample_per_s": n_samples / max(time.perf_counter() - start, 1e-9),
        "provenance.sampler": family.sampler,
        "cost.sample_nfe": float(family.sample_nfe),
    }


PROC_SELF = Path("/proc/self")  # Linux: the resident high-water mark (VmHWM) can be read and reset per run


def reset_peak_memory(device: torch.device) -> None:
    """Start a run's peak afresh: CUDA's peak statistics on a GPU, else the process's resident high-water mark
    (writing 5 to /proc/self/clear_refs), so that a Ray actor reused for several trials reports each one's own
    peak. Where Linux does not allow it the peak stays that of the process (ru_maxrss)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        (PROC_SELF / "clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_bytes(device: torch.device) -> float:
    """The peak CUDA allocation on `device` when it is a GPU; else the peak resident memory of this process since
    reset_peak_memory (VmHWM), or since it started where that is not available. A CPU run reports its RSS even
    where CUDA was initialised."""
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    try:
        status = (PROC_SELF / "status").read_text()
        return float(next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) * 1024)
    except (OSError, StopIteration, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux reports KiB
