"""Case 'members': S seeds trained as one batched model (genbench.train.members) against S separate runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.bench.harness import CASES, CaseResult, Context, Target, paired_ratios, spread
from genbench.bench.loop import _config, _steps_only_of, interleaved

MEMBERS = (1, 2, 4, 8)  # seeds per configuration
MEMBERS_TARGET = (4, 1.5)  # the goal on the CPU: 4 batched GAN members >= 1.5x the throughput of 4 runs
BLOCKS = ((10, 3), (40, 7))  # (steps per block, rounds): quick, full
IMAGE_BLOCKS = ((5, 3), (10, 5))  # the conv nets' steps cost tens of times an MLP's on a CPU core
DATA = "grid25"  # the toy data the batching families' MLP nets train on, at each family's default sizes
# conv nets batched too: a line each on 8x8 digits at default sizes (diffusion's U-Net and the image flow are left
# out: at default sizes 8 separate CPU runs of them would take most of the case's time)
IMAGES = {"gan": "digits", "vae": "digits", "autoregressive": "digits"}


def _views(family: str, cfg: Any, data: Any, size: int) -> list[Any]:
    """`size` members of `cfg`, each built from its own seed as its per-seed run builds it."""
    import torch

    from genbench.families import FAMILIES

    spec, views = FAMILIES.get(family), []
    for seed in range(size):
        torch.manual_seed(seed)
        views.append(spec.build(cfg, data))
    return views


def _separate(family: str, cfg: Any, data: Any, size: int) -> Callable[[int], None]:
    """S separate runs on one core: each member's bare loop (batch draws and train_step), one after the other."""
    runs = [_steps_only_of(view, cfg, data) for view in _views(family, cfg, data, size)]

    def run(steps: int) -> None:
        for one in runs:
            one(steps)

    return run


def _batched(family: str, cfg: Any, data: Any, size: int) -> Callable[[int], None]:
    """The same S members as one batched model: each member's batch draws, one batched train_step."""
    import torch

    from genbench.families import FAMILIES

    batched = FAMILIES.get(family).build_batched(_views(family, cfg, data, size), cfg)
    gens = [torch.Generator().manual_seed(seed) for seed in range(size)]  # noise
    orders = [torch.Generator().manual_seed(seed) for seed in range(size)]  # batch order
    rows, train = cfg.train.batch_size * batched.batches_per_step, data.train

    def run(steps: int) -> None:
        for _ in range(steps):
            idx = torch.stack([torch.randint(len(train), (rows,), generator=g) for g in orders])  # (S, rows)
            batched.train_step(train[idx], gens)  # (S, rows, D) or images (S, rows, C, H, W)

    return run


def _family(ctx: Context, family: str, data_name: str = DATA) -> tuple[list[str], dict[str, Any]]:
    from genbench.data import load_dataset

    block, rounds = ctx.pick(*(BLOCKS if data_name == DATA else IMAGE_BLOCKS))
    cfg = _config(family, data_name, block * (rounds + 1), {})
    data = load_dataset(cfg.data)
    lines = [f"{family}/{data_name} at its default sizes, {rounds} rounds of {block} steps, CPU time, 1 thread"]
    out: dict[str, Any] = {}
    for size in MEMBERS:
        ctx.say(f"  {family}: {size} member(s) batched vs {size} separate run(s)")
        runs = {"separate": _separate(family, cfg, data, size), "batched": _batched(family, cfg, data, size)}
        times = interleaved(runs, rounds, block)
        ratio = spread(paired_ratios(times["separate"], times["batched"]))  # same member-steps: throughput ratio
        rate = {name: size * block / spread(t).median for name, t in times.items()}  # member-steps per CPU second
        lines.append(
            f"  S={size}: batched {rate['batched']:7.1f} member-steps/s, separate {rate['separate']:7.1f}: "
            f"batched / separate throughput {ratio.text('.2f', 'x')}"
        )
        out[str(size)] = {"seconds": times, "ratio": ratio, "member_steps_per_s": rate}
    return lines, out


@CASES.register(
    "members",
    f"seeds as one batched model vs separate runs, S = {', '.join(map(str, MEMBERS))} (target: GAN "
    f"{MEMBERS_TARGET[0]} members >= {MEMBERS_TARGET[1]}x)",
)
def members_case(ctx: Context) -> CaseResult:
    import torch

    from genbench.families import FAMILIES

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a trial trains (train.threads = 1): the comparison is per core
    result = CaseResult()
    try:
        for family in [name for name in FAMILIES.names() if FAMILIES.get(name).batched]:
            lines, data = _family(ctx, family)
            result.lines += lines
            result.data[family] = data
            if family in IMAGES:  # its conv nets: grouped convolutions (genbench.nets.ensemble_conv*)
                lines, data = _family(ctx, family, IMAGES[family])
                result.lines += lines
                result.data[f"{family}/{IMAGES[family]}"] = data
    finally:
        torch.set_num_threads(threads)
    size, goal = MEMBERS_TARGET
    gan = result.data["gan"][str(size)]["ratio"].median
    result.targets.append(Target(f"gan {size} batched members / {size} separate runs (throughput)", gan, goal, ">="))
    return result
