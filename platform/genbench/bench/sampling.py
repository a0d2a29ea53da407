"""Case 'sampling': samples/s and network evaluations per sample of every family; DDIM steps vs DDPM quality."""

from __future__ import annotations

import time
from typing import Any

from genbench.bench.harness import CASES, CaseResult, Context, spread

FAMILY_NAMES = ("vae", "gan", "diffusion", "autoregressive", "flow")
DDIM_STEPS = (10, 20, 50, 100)


def _build(family: str, data: Any, flat: dict[str, Any]) -> Any:
    from genbench.config import from_flat
    from genbench.families import FAMILIES

    cfg = from_flat({"family": family, "data.name": data.name, "seed": 0, **flat})
    return FAMILIES.get(family).build(cfg, data)


def sample_rate(family: Any, n: int, repeats: int) -> Any:
    """Samples per second of `repeats` calls of sample(n) (wall clock, like cost.sample_per_s)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        family.sample(n)
        rates.append(n / (time.perf_counter() - start))
    return spread(rates)


def family_rates(ctx: Context) -> tuple[list[str], dict[str, Any]]:
    """Every family at its default size (untrained: the speed of sampling does not depend on the weights)."""
    from genbench.data import load_dataset

    lines, out = [], {}
    for data_name, n in ctx.pick((("grid25", 1000), ("digits", 100)), (("grid25", 2500), ("digits", 500))):
        data = load_dataset(_build_data_cfg(data_name))
        for name in FAMILY_NAMES:
            family = _build(name, data, {})
            rate = sample_rate(family, n, ctx.pick(3, 5))
            nfe = family.sample_nfe
            out[f"{name}/{data_name}"] = {"n": n, "samples_per_s": rate, "nfe": nfe}
            lines.append(
                f"{name:>14} on {data_name:<7} {rate.median:10.0f} samples/s "
                f"(min {rate.low:.0f}, max {rate.high:.0f}), {nfe} network evaluations per sample"
            )
    return lines, out


def _build_data_cfg(name: str) -> Any:
    from genbench.config import DataConfig

    return DataConfig(name=name)


def trained_diffusion(ctx: Context) -> tuple[Any, Any, int]:
    """A small diffusion U-Net trained on digits by genbench's loop (T = 1000, cosine schedule)."""
    import torch

    from genbench.config import from_flat
    from genbench.data import load_dataset
    from genbench.families import FAMILIES
    from genbench.train.loop import train

    steps = ctx.pick(300, 2000)
    flat = {
        "family": "diffusion",
        "data.name": "digits",
        "seed": 0,
        "train.steps": steps,
        "eval.every": steps,
        **ctx.pick({"diffusion.unet_channels": 8, "train.batch_size": 128}, {}),
    }
    cfg = from_flat(flat)
    data = load_dataset(cfg.data)
    torch.manual_seed(0)
    family = FAMILIES.get("diffusion").build(cfg, data)
    ctx.say(f"  training a diffusion U-Net on digits for {steps} steps (for the sampler comparison)")
    train(family, data, cfg, lambda step, values: None, lambda f: {})
    return family, data, steps


def sampler_quality(ctx: Context) -> tuple[list[str], dict[str, Any]]:
    """Each sampler of one trained model: samples/s, network evaluations per sample and quality (fd, modes)."""
    import torch

    from genbench.train.evaluate import Evaluator

    family, data, steps = trained_diffusion(ctx)
    n = ctx.pick(200, 1000)
    evaluator = Evaluator(data, n)
    m = family.cfg
    saved = (m.sampler, m.ddim_steps)
    features = evaluator.provenance()["provenance.extractor"]
    lines, out = [f"diffusion on digits after {steps} steps; quality of {n} samples ({features})"], {}
    try:
        for sampler, k in [("ddim", k) for k in DDIM_STEPS] + [("ddpm", m.timesteps)]:
            m.sampler, m.ddim_steps = sampler, min(k, m.timesteps)
            torch.manual_seed(1)  # the same starting noise for every sampler
            start = time.perf_counter()
            quality = evaluator(family)
            seconds = time.perf_counter() - start  # sampling plus scoring
            label = f"{sampler.upper()} {k} steps"
            out[label] = {"nfe": family.sample_nfe, "eval_s": seconds, **quality}
            lines.append(
                f"{label:>16}: fd {quality.get('fd', float('nan')):8.3f}, modes {quality.get('modes', 0):.0f}"
                f", kid {quality.get('kid', float('nan')):.4f}, {family.sample_nfe} NFE, "
                f"{n / seconds:.0f} samples/s (sampling and scoring)"
            )
    finally:
        m.sampler, m.ddim_steps = saved
    return lines, out


@CASES.register(
    "sampling",
    "samples/s and network evaluations per sample of every family; DDIM 10/20/50/100 "
    "steps vs DDPM with the quality each reaches",
)
def sampling_case(ctx: Context) -> CaseResult:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a trial samples (train.threads = 1)
    try:
        rate_lines, rates = family_rates(ctx)
        quality_lines, quality = sampler_quality(ctx)
    finally:
        torch.set_num_threads(threads)
    return CaseResult(rate_lines + quality_lines, {"families": rates, "diffusion_samplers": quality})
