"""Case 'loop': genbench's training loop against a minimal hand-written torch loop for the same model and data."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from genbench.bench.harness import CASES, CaseResult, Context, Target, paired_ratios, spread

LOOP_TARGET = 1.03  # the goal: at most 3% slower than the hand-written loop
# (family, data, overrides): a GAN on 2-D toy data and a diffusion U-Net on 8x8 digits, at their default sizes
SCENARIOS = (("gan", "grid25", {}), ("diffusion", "digits", {}))
BLOCKS = {"gan": ((50, 12), (100, 30)), "diffusion": ((4, 8), (10, 20))}  # (steps per block, rounds): quick, full


def _config(family: str, data: str, steps: int, extra: dict[str, Any]) -> Any:
    from genbench.config import from_flat

    return from_flat({"family": family, "data.name": data, "train.steps": steps, "seed": 0, **extra})


def _hand_gan(cfg: Any, data: Any) -> Callable[[int], None]:
    """The non-saturating GAN written directly in torch: same nets, optimisers, batch draws; no metrics."""
    import torch
    import torch.nn.functional as F

    from genbench.families.gan import build_nets

    m, o = cfg.model, cfg.optim
    g, d = build_nets(m, data)
    opt_g = torch.optim.Adam(g.parameters(), lr=o.lr_g, betas=(o.beta1_g, o.beta2_g))
    opt_d = torch.optim.Adam(d.parameters(), lr=o.lr_d, betas=(o.beta1_d, o.beta2_d))
    batch_size, latent = cfg.train.batch_size, m.latent_dim

    rng = torch.Generator().manual_seed(cfg.seed)

    def run(steps: int) -> None:
        for _ in range(steps):
            real = data.train[torch.randint(len(data.train), (batch_size,), generator=rng)]  # (B, 2)
            loss_d = F.softplus(-d(real)).mean() + F.softplus(d(g(torch.randn(batch_size, latent)).detach())).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-d(g(torch.randn(batch_size, latent)))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

    return run


def _hand_diffusion(cfg: Any, data: Any) -> Callable[[int], None]:
    """DDPM's simple loss written directly in torch: same U-Net, Adam (the family's AdamW at its default weight
    decay 0), LR schedule, gradient clipping."""
    import torch

    from genbench.families.diffusion import Schedule, build_denoiser
    from genbench.families.steps import lr_factor

    m, o = cfg.model, cfg.optim
    net, sched = build_denoiser(m, data), Schedule(m.schedule, m.timesteps, m.variance)
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.beta1, o.beta2))
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.train.steps, o.warmup_steps, o.lr_decay))
    a, b = sched.alpha_bar.sqrt(), (1 - sched.alpha_bar).sqrt()  # (T,)

    rng = torch.Generator().manual_seed(cfg.seed)

    def run(steps: int) -> None:
        for _ in range(steps):
            x0 = data.train[torch.randint(len(data.train), (cfg.train.batch_size,), generator=rng)] * 2 - 1
            t = torch.randint(m.timesteps, (len(x0),))  # (B,)
            noise = torch.randn_like(x0)  # (B, C, H, W)
            xt = a[t].view(-1, 1, 1, 1) * x0 + b[t].view(-1, 1, 1, 1) * noise
            loss = (net(xt, t.float() * (1000.0 / m.timesteps)) - noise).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), o.grad_clip)
            opt.step()
            lr.step()

    return run


def _genbench(cfg: Any, data: Any) -> Callable[[int], None]:
    """genbench's train() at its defaults (window syncs, divergence checks, FLOP count); evaluation timed apart."""
    from genbench.families import FAMILIES

    return _genbench_of(FAMILIES.get(cfg.family).build(cfg, data), cfg, data)


def _genbench_of(family: Any, cfg: Any, data: Any) -> Callable[[int], None]:
    from genbench.train.loop import LoopState, train

    state, loop_cfg = LoopState(), copy.deepcopy(cfg)  # the family keeps the whole run's length (LR schedule)

    def run(steps: int) -> None:  # each block continues the run, as a resumed run does
        loop_cfg.train.steps = state.step + steps
        train(family, data, loop_cfg, lambda step, values: None, lambda f: {}, state=state)

    return run


def _steps_only(cfg: Any, data: Any) -> Callable[[int], None]:
    """The family's own train_step in a bare loop: separates the step's metrics from the loop's machinery."""
    from genbench.families import FAMILIES

    return _steps_only_of(FAMILIES.get(cfg.family).build(cfg, data), cfg, data)


def _steps_only_of(family: Any, cfg: Any, data: Any) -> Callable[[int], None]:
    import torch

    rows = cfg.train.batch_size * family.batches_per_step
    rng = torch.Generator().manual_seed(cfg.seed)

    def run(steps: int) -> None:
        for _ in range(steps):
            family.train_step(data.train[torch.randint(len(data.train), (rows,), generator=rng)])

    return run


VARIANTS: dict[str, Any] = {"genbench": _genbench, "train_step only": _steps_only}
HAND = {"gan": _hand_gan, "diffusion": _hand_diffusion}


def interleaved(runs: dict[str, Callable[[int], None]], rounds: int, block_steps: int) -> dict[str, list[float]]:
    """CPU seconds of a block of steps of each variant per round, the order rotated every round.

    A shared machine's load changes within seconds, so each ratio compares blocks run side by side, and CPU time
    (one torch thread) leaves out the time spent waiting for a core. A first round warms up and is not counted.
    """
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds + 1):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            cpu0 = time.process_time()
            runs[name](block_steps)
            if r:
                times[name].append(time.process_time() - cpu0)
    return times


class NullFamily:
    """A real family's modules and scalars with a step that costs nothing: what is left of a run is the loop."""

    def __init__(self, family: Any, batch: Any) -> None:
        self.batches_per_step, self._modules = family.batches_per_step, family.modules()
        self.horizon = family.horizon  # the loop keeps it current (under a compute budget)
        self.scalars = family.train_step(batch)  # the names and count of the real step's scalars

    def modules(self) -> dict[str, Any]:
        return self._modules

    def train_step(self, batch: Any) -> dict[str, Any]:
        return dict(self.scalars)


def loop_cost_s(cfg: Any, data: Any, steps: int, repeats: int) -> Any:
    """CPU seconds per step of train() around a free step, minus a bare loop drawing the same batches."""
    from genbench.families import FAMILIES

    null = NullFamily(FAMILIES.get(cfg.family).build(cfg, data), data.train[: cfg.train.batch_size])
    runs = {"bare": _steps_only_of(null, cfg, data), "genbench": _genbench_of(null, cfg, data)}
    times = interleaved(runs, repeats, steps)
    return spread([(g - b) / steps for g, b in zip(times["genbench"], times["bare"])])


def default_run(family_name: str, data: Any) -> tuple[Any, Any]:
    """(cfg, family) of a run at the family's default length and cadence on `data`, built but not trained."""
    from genbench.families import FAMILIES

    spec = FAMILIES.get(family_name)
    cfg = _config(family_name, data.name, spec.defaults.get("train.steps", 2000), {})
    return cfg, spec.build(cfg, data)


def eval_share(family: Any, cfg: Any, data: Any, step_s: float, ctx: Context) -> dict[str, Any]:
    """Share of a run of `cfg`'s length spent evaluating at its cadence (eval.every, eval.n_samples).

    --quick scores a fifth of the samples and scales the time up (sampling and features are linear in n)."""
    from genbench.train.evaluate import Evaluator

    n = ctx.pick(cfg.eval.n_samples // 5, cfg.eval.n_samples)
    evaluator = Evaluator(data, n)
    cpu0 = time.process_time()
    evaluator(family)
    eval_s = (time.process_time() - cpu0) * cfg.eval.n_samples / n  # CPU seconds, as the steps are timed
    evals = -(-cfg.train.steps // cfg.eval.every)  # every eval.every steps and at the last step
    train_s = cfg.train.steps * step_s
    return {
        "steps": cfg.train.steps,
        "eval_every": cfg.eval.every,
        "n_samples": cfg.eval.n_samples,
        "measured_n_samples": n,
        "scaled": f", timed on {n} and scaled" if n != cfg.eval.n_samples else "",
        "eval_s": eval_s,
        "evals": evals,
        "share": evals * eval_s / (train_s + evals * eval_s),
    }


def _scenario(ctx: Context, family: str, data_name: str, extra: dict[str, Any]) -> tuple[list[str], dict, Target]:
    import torch

    from genbench.data import load_dataset

    block, rounds = ctx.pick(*BLOCKS[family])
    cfg = _config(family, data_name, block * (rounds + 1), extra)
    data = load_dataset(cfg.data)
    torch.manual_seed(0)
    runs = {"hand": HAND[family](cfg, data), **{n: b(cfg, data) for n, b in VARIANTS.items()}}
    ctx.say(f"  {family} on {data_name}: {rounds} rounds of {block} steps of {', '.join(runs)}, interleaved")
    times = interleaved(runs, rounds, block)
    ratios = {f"{n} / hand": spread(paired_ratios(times[n], times["hand"])) for n in VARIANTS}
    ratios["genbench / train_step only"] = spread(paired_ratios(times["genbench"], times["train_step only"]))
    hand_step_s = spread(times["hand"]).median / block
    default_cfg, fresh = default_run(family, data)
    share = eval_share(fresh, default_cfg, data, spread(times["genbench"]).median / block, ctx)
    machinery = loop_cost_s(cfg, data, ctx.pick(500, 2000), ctx.pick(3, 7))
    lines = [f"{family}/{data_name}: hand loop {hand_step_s * 1e3:.2f} CPU ms/step; CPU-time ratios"]
    lines += [f"  {name}: {s.text()}" for name, s in ratios.items()]
    lines.append(
        f"  the loop alone (train() around a step that costs nothing, minus a bare loop): "
        f"{machinery.median * 1e6:.0f} us/step (min {machinery.low * 1e6:.0f}, max "
        f"{machinery.high * 1e6:.0f}) = {machinery.median / hand_step_s:.2%} of the hand-written step"
    )
    lines.append(
        f"  evaluation at the family's defaults: {share['evals']} x {share['eval_s']:.2f} CPU s "
        f"({share['n_samples']} samples{share['scaled']}) over {share['steps']} steps = "
        f"{share['share']:.1%} of the run"
    )
    data_out = {
        "block_steps": block,
        "rounds": rounds,
        "seconds": times,
        "ratios": ratios,
        "hand_step_s": hand_step_s,
        "eval": share,
        "loop_alone_s_per_step": machinery,
    }
    return (
        lines,
        data_out,
        Target(f"{family} genbench loop / hand", ratios["genbench / hand"].median, LOOP_TARGET, "<="),
    )


@CASES.register("loop", "training loop overhead: genbench's train() vs a hand-written torch loop (target <= 1.03x)")
def loop_case(ctx: Context) -> CaseResult:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a trial trains (train.threads = 1): the comparison is per core
    result = CaseResult()
    try:
        for family, data_name, extra in SCENARIOS:
            lines, data, target = _scenario(ctx, family, data_name, extra)
            result.lines += lines
            result.data[f"{family}/{data_name}"] = data
            result.targets.append(target)
    finally:
        torch.set_num_threads(threads)
    return result


EVAL_SHARE_MAX = 0.15  # evaluation should stay a bounded share of a default run (the issue sets no number)


def _step_cpu_s(family: Any, cfg: Any, data: Any, steps: int) -> float:
    """CPU seconds per train_step after two warm-up steps (one torch thread, as a trial trains)."""
    run = _steps_only_of(family, cfg, data)
    run(2)
    cpu0 = time.process_time()
    run(steps)
    return (time.process_time() - cpu0) / steps


def _likelihood_cpu_s(family: Any, data: Any) -> float:
    """CPU seconds of the run's one final likelihood evaluation (0 for a family without one)."""
    from genbench.train.evaluate import likelihood

    cpu0 = time.process_time()
    likelihood(family, data)
    return time.process_time() - cpu0


def _family_share(ctx: Context, family_name: str, data_name: str) -> tuple[str, dict[str, Any]]:
    from genbench.config import DataConfig
    from genbench.data import load_dataset

    data = load_dataset(DataConfig(name=data_name))
    cfg, family = default_run(family_name, data)
    step_s = _step_cpu_s(family, cfg, data, ctx.pick(5, 20))
    share = eval_share(family, cfg, data, step_s, ctx)  # the same family: built once for steps, samples, likelihood
    final_s = _likelihood_cpu_s(family, data)
    run_s = cfg.train.steps * step_s + share["evals"] * share["eval_s"] + final_s
    share.update(step_s=step_s, likelihood_s=final_s, likelihood_share=final_s / run_s)
    line = (
        f"  {family_name:<15} {data_name:<7} {step_s * 1e3:8.1f} ms/step x {share['steps']:>6}  "
        f"{share['evals']} evals x {share['eval_s']:6.2f} s = {share['share']:5.1%}   "
        f"final likelihood {final_s:6.2f} s = {final_s / run_s:5.1%}"
    )
    return line, share


@CASES.register(
    "evaluation",
    f"evaluation cadence: the share of a default run every family spends evaluating (target <= {EVAL_SHARE_MAX:.0%})",
)
def evaluation_case(ctx: Context) -> CaseResult:
    import torch

    from genbench.families import FAMILIES

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result = CaseResult(
        lines=[
            "  family          data    CPU ms per step x default steps  evaluations (sampling + "
            "scoring) = share   final likelihood = share"
        ]
    )
    try:
        for family_name in FAMILIES.names():
            for data_name in ("grid25", "digits"):
                ctx.say(f"  {family_name} on {data_name}: steps, one evaluation, the final likelihood")
                line, share = _family_share(ctx, family_name, data_name)
                result.lines.append(line)
                result.data[f"{family_name}/{data_name}"] = share
    finally:
        torch.set_num_threads(threads)
    worst = max(result.data.values(), key=lambda s: s["share"])
    result.targets.append(Target("largest evaluation share of a default run", worst["share"], EVAL_SHARE_MAX, "<="))
    return result
