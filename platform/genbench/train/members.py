"""Batched members: a configuration's seeds trained in one process as one model with a member dimension.

Each member is built as its per-seed run builds it (its seed, its initial weights), then the members' networks are
stacked (genbench.nets.ensemble) into the family's batched model (FamilySpec.batched). Every member keeps its own
batch order, its own noise generator, its own divergence checks, evaluations, history and row, so that S seeds
trained here give what S per-seed runs (genbench.train.run) give, up to float rounding. A member that diverges or
collapses ends at its step, as its per-seed run would: its row is measured then and its weights stay frozen while
the others go on.
"""

from __future__ import annotations

import contextlib
import copy
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from genbench.config import RunConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import ConfigError, GenbenchError
from genbench.families import FAMILIES
from genbench.families.base import Autocast, Family
from genbench.families.member_steps import Generators
from genbench.families.steps import Horizon
from genbench.nets.ensemble import NotBatchable
from genbench.train.device import Assignment, Placement, apply_backends, batch_to, place, resolve, train_split_on
from genbench.train.evaluate import Evaluator
from genbench.train.flops import FlopCount
from genbench.train.loop import LoopOutcome, LoopState, Report, _evaluate, close_window
from genbench.train.plan import DeviceClock, Plan
from genbench.train.run import Meter, Snapshot, measure, run, running_row

TRAIN_PATH = "batched"  # the rows' train_path when their seeds trained as one batched model


class Batched(Protocol):
    """What a family's batched model offers the member loop (genbench.families.gan_members.BatchedGAN)."""

    batches_per_step: int
    autocast: Autocast

    def networks(self) -> dict[str, nn.Module]:
        """The ensemble networks (every tensor member-major, (S, ...))."""
        ...

    def write(self, i: int) -> Family:
        """Member i as its family: a per-seed family holding the member's current state."""
        ...

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One step of every member on batch (S, rows, ...); returns (S,) `train.*` scalars."""
        ...


def members_finite(nets: Iterable[nn.Module]) -> torch.Tensor:
    """(S,) bool: every parameter of member i is finite (no host sync here)."""
    flags = [torch.isfinite(p).flatten(1).all(dim=1) for net in nets for p in net.parameters()]
    return torch.stack(flags).all(dim=0)


class Frozen:
    """The state of members that ended, put back after every step: the others' steps leave them as they ended."""

    def __init__(self) -> None:
        self.held: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def freeze(self, i: int, nets: Iterable[nn.Module]) -> None:
        tensors = [t for net in nets for t in (*net.parameters(), *net.buffers()) if t.dim() > 0]
        self.held[i] = [(t, t.detach()[i].clone()) for t in tensors]

    @torch.no_grad()
    def restore(self) -> None:
        for i, pairs in self.held.items():
            for tensor, value in pairs:
                tensor[i] = value


@dataclass(frozen=True)
class Closing:
    """A window's end in the member loop: its step, whether the members evaluate there, whether it is the last."""

    step: int
    evaluates: bool
    last: bool


@dataclass
class Member:
    """One seed of the batched run: its config, view, generators, loop state, window, curve and, once ended, row."""

    index: int
    cfg: RunConfig
    evaluator: Evaluator
    noise: torch.Generator  # on the device: the per-seed run's global generator there
    cpu: torch.Generator  # the per-seed run's global CPU generator (the same object on the CPU)
    order: torch.Generator  # batch order, as the loop draws it
    report: Report
    snapshot: Snapshot | None = None
    state: LoopState = field(default_factory=LoopState)
    window: list[dict[str, torch.Tensor]] = field(default_factory=list)
    curve: list[dict[str, float]] = field(default_factory=list)
    row: dict[str, Any] | None = None

    @contextlib.contextmanager
    def global_rng(self) -> Iterator[None]:
        """torch's global generators set to this member's inside the block (evaluation and sampling draw from them
        in a per-seed run), and this member's advanced by what the block drew."""
        cpu_saved = torch.get_rng_state()
        torch.set_rng_state(self.cpu.get_state())
        cuda = self.noise.device.type == "cuda"
        cuda_saved = torch.cuda.get_rng_state(self.noise.device) if cuda else None
        if cuda:
            torch.cuda.set_rng_state(self.noise.get_state(), self.noise.device)
        try:
            yield
        finally:
            self.cpu.set_state(torch.get_rng_state())
            torch.set_rng_state(cpu_saved)
            if cuda_saved is not None:
                self.noise.set_state(torch.cuda.get_rng_state(self.noise.device))
                torch.cuda.set_rng_state(cuda_saved, self.noise.device)


def unsupported(cfg: RunConfig, data: Dataset | None = None) -> str:
    """Why `cfg`'s seeds cannot train as one batched model ('' when they can, as far as the config says)."""
    spec = FAMILIES.get(cfg.family)
    reasons = [
        (not spec.batched, f"family {cfg.family!r} has no batched model"),
        (cfg.train.compile, "train.compile is on"),
    ]
    return next((why for bad, why in reasons if bad), "") or spec.build_batched.unsupported(cfg, data)


def batches(flat: dict[str, Any], seeds: int, data: Dataset | None = None, workers: bool = False) -> bool:
    """Whether a configuration's `seeds` seeds train as one batched model: train.batched_seeds (auto: where the
    family supports it), at least two seeds, in one process (not data-parallel). `true` where the configuration
    cannot batch is a ConfigError saying why."""
    cfg = from_flat({**flat, "seed": int(flat.get("seed", 0))})
    setting = cfg.train.batched_seeds
    why = "one seed" if seeds < 2 else "data-parallel training" if workers else unsupported(cfg, data)
    if setting == "true" and why:
        raise ConfigError(
            f"train.batched_seeds is true but the seeds cannot train batched here: {why}",
            key="train.batched_seeds",
            fix="set train.batched_seeds: auto (batched where it can) or false",
        )
    return setting != "false" and not why


def _members(
    cfgs: list[RunConfig],
    data: Dataset,
    placement: Placement,
    reports: list[Report],
    snapshots: Sequence[Snapshot | None],
) -> tuple[list[Member], list[Family]]:
    """Each member's family, built and placed as its per-seed run builds it, and its generators as they stand there
    when that run's first step begins."""
    members, views = [], []
    base = Evaluator(data, cfgs[0].eval.n_samples, cfgs[0].eval.features, cfgs[0].eval.inception_weights)
    for i, (cfg, report, snapshot) in enumerate(zip(cfgs, reports, snapshots)):
        torch.manual_seed(cfg.seed)
        views.append(place(FAMILIES.get(cfg.family).build(cfg, data), placement))
        cpu = torch.Generator().manual_seed(cfg.seed)
        cpu.set_state(torch.get_rng_state())
        dev = torch.Generator(placement.device).manual_seed(cfg.seed) if placement.cuda else cpu
        order = torch.Generator().manual_seed(cfg.seed)
        evaluator = copy.copy(base)  # the reference features computed once; each member's noise its own seed's
        evaluator.seed = cfg.seed
        members.append(Member(i, cfg, evaluator, dev, cpu, order, report, snapshot))
    return members, views


def run_members(
    flats: list[dict[str, Any]],
    reports: list[Report],
    snapshots: Sequence[Snapshot | None] | None = None,
    assignment: Assignment = Assignment(),
    data: Dataset | None = None,
    keep_model: bool = False,
) -> list[dict[str, Any]]:
    """Train the runs `flats` describe (one configuration, one seed each) as one batched model; their rows, in order
    (each with its member's final model where `keep_model`, as a per-seed run's).

    The batched counterpart of genbench.train.run.run: the same reports, snapshots and rows per seed, with
    `train_path: batched` and cost.device_s the member's share (1 / S) of the process's. Bad configuration or data
    raise GenbenchError; a crash inside training fails every member."""
    cfgs = [from_flat(f) for f in flats]
    placement = resolve(cfgs[0].train, assignment.device)
    torch.set_num_threads(cfgs[0].train.threads)
    meter = Meter(placement, assignment)
    data = data if data is not None else load_dataset(cfgs[0].data)
    apply_backends(placement)
    snaps = snapshots or [None] * len(flats)
    members, views = _members(cfgs, data, placement, reports, snaps)
    try:
        batched = FAMILIES.get(cfgs[0].family).build_batched(views, cfgs[0])
    except NotBatchable:  # a layer the ensemble layers do not cover: each seed its own run, one after the other
        return [
            run(f, r, assignment=assignment, snapshot=s, data=data, keep_model=keep_model)
            for f, r, s in zip(flats, reports, snaps)
        ]
    try:
        MemberLoop(batched, members, data, placement, meter, keep_model).run()
    except GenbenchError:
        raise
    except Exception as exc:  # a crash inside training: every member's outcome, not the end of the sweep
        error = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(8)}
        for m in members:
            m.row = m.row or {**error, **_run_columns(meter, len(members))}
    return [m.row or {} for m in members]


def _run_columns(meter: Meter, size: int) -> dict[str, Any]:
    columns = meter.columns()
    columns["cost.device_s"] /= size  # the member's share of the process's device time, so far
    return {"train_path": TRAIN_PATH, "workers": 1, **columns, "end_time": time.time()}


class MemberLoop:
    """genbench.train.loop.train over every member at once: one batched step, then each member's own windows,
    divergence checks, evaluations, reports, collapse stop and outcome."""

    def __init__(
        self,
        batched: Batched,
        members: list[Member],
        data: Dataset,
        placement: Placement,
        meter: Meter,
        keep_model: bool = False,
    ) -> None:
        self.batched, self.members, self.placement, self.meter = batched, members, placement, meter
        self.keep_model = keep_model
        self.data = train_split_on(data, placement)
        self.eval_data, self.frozen = data, Frozen()
        self.gens = [m.noise for m in members]
        cfg = members[0].cfg
        self.rows = cfg.train.batch_size * batched.batches_per_step
        # a batched model's schedules read its horizon (as a family's do); the GAN's has none
        self.plan = Plan.of(cfg, getattr(batched, "horizon", None) or Horizon(cfg.train.steps))

    def _batch(self) -> torch.Tensor:
        train = self.data.train
        idx = torch.stack([torch.randint(len(train), (self.rows,), generator=m.order) for m in self.members])
        return batch_to(train[idx.to(train.device, non_blocking=True)], self.placement)  # (S, rows, D)

    def _step(self, batch: torch.Tensor, first: bool) -> dict[str, torch.Tensor]:
        if not first:
            return self.batched.train_step(batch, self.gens)
        with FlopCount() as counter:
            scalars = self.batched.train_step(batch, self.gens)
        for m in self.members:
            m.state.step_flops = float(counter.total) / len(self.members)  # one member's share: its own step's
        return scalars

    def run(self) -> None:
        """Every member's steps under the shared plan: the members have one architecture, so one step's FLOPs and
        (as shares of the process) its device-seconds are the same for each, and they spend a budget together."""
        plan, clock, spent_s, evals, step = self.plan, DeviceClock(self.placement.cuda), 0.0, 0, 0
        while not plan.done(step, spent_s):
            active = [m for m in self.members if m.row is None]
            if not active:
                return
            step += 1
            scalars = self._step(self._batch(), step == 1)
            if step == 1:
                plan.first_step(active[0].state.step_flops)  # a FLOP budget becomes steps
            self.frozen.restore()
            for m in active:
                m.window.append({k: v[m.index] for k, v in scalars.items()})
            if not plan.closes_window(step):
                continue
            finite = members_finite(self.batched.networks().values()).tolist()  # (S,): the window's host sync
            spent_s = plan.spend(spent_s, clock.lap_s() / len(self.members), step)  # each member's share
            window = Closing(step, plan.evaluates(step, spent_s, evals), plan.done(step, spent_s))
            spent = plan.spent(step, spent_s, active[0].state.step_flops)
            for m in active:
                self._close(m, window, finite[m.index], spent)
            evals = plan.evals_made(step, spent_s, evals) if window.evaluates else evals
            clock.restart()  # evaluations and reports are not training
        for m in self.members:
            if m.row is None:
                self._end(m, LoopOutcome("completed", step, None, "", m.state.grad_norm_max, m.state.step_flops))

    def _close(self, m: Member, window: Closing, params_ok: bool, spent: dict[str, float]) -> None:
        """The end of member m's window: what genbench.train.loop.train does there for one run."""
        cfg, state, step = m.cfg, m.state, window.step
        closed = close_window(m.window, cfg.train.diverge_loss, torch.tensor(params_ok))
        state.grad_norm_max = max(state.grad_norm_max, closed.grad_norm_max)
        values = {**closed.means, **spent}
        if closed.bad_offset is not None:
            m.report(step, values)
            at = step - len(m.window) + 1 + closed.bad_offset
            self._end(m, LoopOutcome("diverged", step, at, closed.reason, state.grad_norm_max, state.step_flops))
            return
        m.window = []
        diverged = self._evaluate(m, values) if window.evaluates else ""
        if m.snapshot is not None and window.evaluates:
            row = running_row(self.batched.write(m.index), m.evaluator, m.curve, state, self.meter, step)
            m.snapshot({**row, **_run_columns(self.meter, len(self.members))})
        m.report(step, values)
        if diverged:
            self._end(m, LoopOutcome("diverged", step, step, diverged, state.grad_norm_max, state.step_flops))
            return
        state.step = step
        if cfg.train.collapse_evals and state.collapsed_evals >= cfg.train.collapse_evals and not window.last:
            reason = f"mode collapse: one mode covered in {state.collapsed_evals} evaluations in a row"
            self._end(m, LoopOutcome("early_stopped", step, None, reason, state.grad_norm_max, state.step_flops))

    def _evaluate(self, m: Member, values: dict[str, float]) -> str:
        def evaluate(family: Family) -> dict[str, float]:
            m.curve.append(m.evaluator(family))
            return m.curve[-1]

        with m.global_rng():
            return _evaluate(self.batched.write(m.index), evaluate, values, m.state)

    def _end(self, m: Member, outcome: LoopOutcome) -> None:
        """Member m's row, measured now on its view (as its per-seed run measures after its loop); then frozen."""
        with m.global_rng():
            view = self.batched.write(m.index)
            row = measure(view, self.eval_data, m.cfg, outcome, m.evaluator, m.curve, self.keep_model)
        m.row = {**row, **_run_columns(self.meter, len(self.members))}
        self.frozen.freeze(m.index, self.batched.networks().values())
