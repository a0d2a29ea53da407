"""Batched members: S seeds trained as one batched model give what the same S seeds give trained one by one."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.families.member_steps import member_grad_norms
from genbench.families.steps import clip_grads
from genbench.shipped import STUDIES
from genbench.sweep import trainable
from genbench.sweep.trainable import Training, trial_main
from genbench.train.members import batches, run_members
from genbench.train.run import run

BATCHING = [name for name in FAMILIES.names() if FAMILIES.get(name).batched]  # every family that batches
SEEDS = 2
TIGHT = 1e-4  # relative: float rounding of batched matmuls, amplified by 20 steps of training
# the bias before a batch norm has a zero gradient up to rounding, which Adam turns into full-size steps: runs with
# batch norm agree less tightly (genbench.nets.ensemble.EnsembleBatchNorm), and a sample that crosses a mode's
# threshold moves eval.hq_fraction by 1 / eval.n_samples (0.1 of 0.1 = 0.005: one sample of 200)
LOOSE = 0.1
# the U-Net on 8x8 digits at a fraction of the debug cost (its convolutions dominate a step on the CPU): 10 steps at
# batch 16, 4 channels, evaluated twice on 50 samples of 4 DDIM steps
DIFFUSION_DIGITS: dict[str, Any] = {"data.name": "digits", "train.steps": 10, "eval.every": 5, "train.batch_size": 16}
DIFFUSION_DIGITS |= {"eval.n_samples": 50, "diffusion.ddim_steps": 4, "diffusion.unet_channels": 4}
# sampling a PixelCNN takes one pass per pixel: few samples, evaluated once at the end, and half batches keep its
# variants cheap
PIXELCNN: dict[str, Any] = {"data.name": "digits", "eval.n_samples": 16, "eval.every": 20, "train.batch_size": 32}
# (family, settings, tolerance): every GAN loss, penalty and norm, EMA, d_steps, packing, maxout, batch norm
VARIANTS: list[tuple[str, dict[str, Any], float]] = [
    ("gan", {}, TIGHT),
    (
        "gan",
        {"gan.loss": "wasserstein", "gan.penalty": "gradient_penalty", "gan.spectral_norm": True, "gan.ema": 0.9},
        TIGHT,
    ),
    ("gan", {"gan.loss": "wasserstein", "gan.d_activation": "maxout", "gan.pack": 2, "gan.init": "normal"}, TIGHT),
    ("gan", {"gan.loss": "hinge", "gan.penalty": "r1", "gan.d_steps": 2, "gan.pack_convention": "pacgan"}, TIGHT),
    ("gan", {"gan.loss": "least_squares", "gan.penalty": "zero_gp", "gan.activation": "leaky_relu"}, TIGHT),
    ("gan", {"gan.loss": "minimax", "gan.g_batch_norm": True, "gan.d_batch_norm": True}, LOOSE),
    # a FLOP budget: 12 steps of the debug GAN's 538,624 FLOPs, evaluated every 4 (eval.count 3)
    ("gan", {"train.flops": 6.0e6, "eval.count": 3}, TIGHT),
    ("vae", {}, TIGHT),
    (  # the warm-ups and cosine read the horizon a FLOP budget sets: 15 steps of the debug VAE's 532,480 FLOPs
        "vae",
        {
            "train.flops": 8.0e6,
            "eval.count": 3,
            "vae.decoder_var": "predicted",
            "vae.activation": "maxout",
            "vae.beta": 0.5,
            "vae.kl_warmup": 0.5,
            "optim.grad_clip": 1.0,
            "optim.weight_decay": 0.1,
            "optim.warmup_steps": 5,
            "optim.lr_decay": "cosine",
        },
        TIGHT,
    ),
    ("diffusion", {}, TIGHT),
    (
        "diffusion",
        {
            "diffusion.schedule": "linear",
            "diffusion.ema": 0.9,
            "diffusion.sampler": "ddpm",
            "optim.grad_clip": 0.3,  # about half the steps clip: Adam undoes a constant scale
            "optim.weight_decay": 0.1,
            "optim.lr_decay": "none",
            "optim.warmup_steps": 5,
            "diffusion.nll_bound": True,
        },
        TIGHT,
    ),
    # a FLOP budget: 12 steps of the debug denoiser's 675,840 FLOPs; the cosine decay after 2 warm-up steps reads the
    # horizon the budget sets
    ("diffusion", {"train.flops": 8.2e6, "eval.count": 3, "optim.warmup_steps": 2}, TIGHT),
    # MADE's masked layers and mixture head: both components, a deeper net, weight decay, clipping, warm-up; the
    # cosine schedule's length from a FLOP budget's plan (13 steps of the debug MADE's 217,088 FLOPs)
    ("autoregressive", {}, TIGHT),
    ("autoregressive", {"train.flops": 2.7e6, "eval.count": 3}, TIGHT),
    (
        "autoregressive",
        {
            "autoregressive.component": "logistic",
            "autoregressive.mixtures": 2,
            "autoregressive.made_depth": 3,
            "optim.weight_decay": 0.1,
            "optim.grad_clip": 0.1,  # under the members' norms (~0.3): it clips
            "optim.warmup_steps": 5,
            "optim.lr_decay": "none",
        },
        TIGHT,
    ),
    # the flow: ActNorm's first-batch init, LU 1x1 maps, warm-up and cosine; then without the 1x1 maps, with clipping
    # that bites (grad norms start near 1), weight decay on the conditioners' weights and a FLOP budget of 12 steps of
    # 147,456 FLOPs, whose horizon the cosine schedule follows
    ("flow", {}, TIGHT),
    (
        "flow",
        {
            "flow.invconv": False,
            "optim.grad_clip": 0.5,
            "optim.weight_decay": 0.1,
            "optim.warmup_steps": 0,
            "train.flops": 1.7e6,
            "eval.count": 3,
        },
        TIGHT,
    ),
    # images: the DCGAN nets as grouped convolutions (genbench.nets.ensemble_conv), 8x8 digits at debug widths
    (
        "gan",
        {"data.name": "digits", "gan.loss": "wasserstein", "gan.penalty": "gradient_penalty", "gan.spectral_norm": True}
        | {"gan.pack": 2, "gan.ema": 0.9},
        TIGHT,
    ),
    ("gan", {"data.name": "digits", "gan.penalty": "r1", "gan.g_batch_norm": True, "gan.d_batch_norm": True}, LOOSE),
    # the VAE's conv encoder and decoder on digits: the categorical head over 17 levels (auto), then the Gaussian head
    # on dequantised values (each member's uniform noise, then eps) with a learned (S, C, H, W) log-variance, clipping
    # that bites and weight decay on the conv weights (the Bernoulli head and row chunks: the test after this suite);
    # batches of 32 and one evaluation, at the end, to keep them cheap
    ("vae", {"data.name": "digits", "train.batch_size": 32, "eval.every": 20}, TIGHT),
    (
        "vae",
        {"data.name": "digits", "train.batch_size": 32, "eval.every": 20, "vae.likelihood": "gaussian"}
        | {"optim.grad_clip": 1.0, "optim.weight_decay": 0.1},
        TIGHT,
    ),
    # diffusion's U-Net (genbench.nets.ensemble_conv_diffusion): grouped convolutions, GroupNorm in S * G groups;
    # then three levels (down to 2x2), EMA, clipping that bites and weight decay on the conv and linear weights
    ("diffusion", DIFFUSION_DIGITS, TIGHT),
    (
        "diffusion",
        DIFFUSION_DIGITS
        | {"diffusion.unet_levels": 3, "diffusion.ema": 0.9, "optim.grad_clip": 0.3}
        | {"optim.weight_decay": 0.1, "optim.warmup_steps": 3},
        TIGHT,
    ),
    # the image flow (genbench.nets.ensemble_conv_flow) on 8x8 digits, batch 16, 10 steps: two scales (checkerboard
    # couplings of both parities, squeeze, a channel-wise coupling, 1x1 maps, factoring out), the logit map and each
    # member's dequantisation noise; the train.* values agree to 1e-5, but a sample's value on a level's edge floors to
    # the next level (Flow._postprocess), which moves eval.fd and eval.kid by ~3e-4 and eval.mode_kl by ~4e-2
    (
        "flow",
        {"data.name": "digits", "train.batch_size": 16, "train.steps": 10, "eval.n_samples": 100}
        | {"flow.couplings": 3},
        LOOSE,
    ),
    # one scale with both channel-wise couplings (flipped too), no logit map, no 1x1 maps, clipping (grad norms ~38,
    # clipped to 1) and weight decay on the conv conditioners' weights. Under the flow's 100-step warm-up these two
    # move the reported values by only ~1e-4 and 5e-5 (the vector variant above checks them); without it, rounding
    # (grouped against plain convolutions) grows through Adam's first full-size steps to 3e-4 in train.grad_norm
    (
        "flow",
        {"data.name": "digits", "train.batch_size": 16, "train.steps": 10, "eval.n_samples": 100, "flow.scales": 1}
        | {"flow.logit": False, "flow.invconv": False, "optim.grad_clip": 1.0, "optim.weight_decay": 0.1},
        TIGHT,
    ),
    # the PixelCNN's masked convolutions (types A and B) as grouped convolutions
    # (genbench.nets.ensemble_conv_autoregressive): the categorical head; then the discretised logistic head with
    # weight decay, clipping that bites (the members' norms fall from ~22 to ~15) and a warm-up
    ("autoregressive", PIXELCNN, TIGHT),
    (
        "autoregressive",
        PIXELCNN
        | {"autoregressive.pixel_head": "logistic", "autoregressive.mixtures": 2, "optim.weight_decay": 0.1}
        | {"optim.grad_clip": 18.0, "optim.warmup_steps": 5, "optim.lr_decay": "none"},
        TIGHT,
    ),
]


def _common(flat: dict[str, Any]) -> dict[str, Any]:
    """`flat` without its family's keys (tiny_flat's gan.*), for a run of another family."""
    return {k: v for k, v in flat.items() if k.split(".")[0] not in FAMILIES.names()}


def _flats(
    family: str, settings: dict[str, Any], tiny_flat: dict[str, Any], seeds: int = SEEDS
) -> list[dict[str, Any]]:
    base = {**_common(tiny_flat), "family": family, "eval.n_samples": 200, **FAMILIES.get(family).debug, **settings}
    return [{**base, "seed": seed} for seed in range(seeds)]


def _close(a: Any, b: Any, rel: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=rel * 1e-2)
    return a == b


def _compare(single: list[dict[str, Any]], batched: list[dict[str, Any]], rel: float) -> None:
    for one, many in zip(single, batched):
        assert [s for s, _ in one] == [s for s, _ in many]  # the same reports at the same steps
        for (step, a), (_, b) in zip(one, many):
            assert a.keys() == b.keys()
            bad = {k: (a[k], b[k]) for k in a if not _close(a[k], b[k], rel)}
            assert not bad, f"step {step}: {bad}"


def _final(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("status", "steps", "error")
    return [{k: v for k, v in r.items() if k in keys or k.startswith(("quality.", "stability."))} for r in rows]


def _same_rows(single: list[dict[str, Any]], batched: list[dict[str, Any]], rel: float) -> None:
    for a, b in zip(_final(single), _final(batched)):
        assert a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a), (a, b)


def _both(flats: list[dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """(history, rows) of each seed trained one by one, then of the seeds batched."""
    one: list[list[Any]] = [[] for _ in flats]
    rows_one = [run(f, lambda s, v, h=h: h.append((s, v))) for f, h in zip(flats, one)]
    many: list[list[Any]] = [[] for _ in flats]
    rows_many = run_members(flats, [lambda s, v, h=h: h.append((s, v)) for h in many])
    return one, rows_one, many, rows_many


@pytest.mark.parametrize(("family", "settings", "rel"), VARIANTS, ids=lambda v: str(v) if v else "defaults")
def test_batched_seeds_train_as_the_same_seeds_one_by_one(
    family: str, settings: dict[str, Any], rel: float, tiny_flat: dict[str, Any]
) -> None:
    one, rows_one, many, rows_many = _both(_flats(family, settings, tiny_flat))
    _compare(one, many, rel)
    _same_rows(rows_one, rows_many, rel)
    assert {r["train_path"] for r in rows_many} == {"batched"} and {r["train_path"] for r in rows_one} == {"in-process"}
    assert [r["cost.train_flops"] for r in rows_many] == pytest.approx([r["cost.train_flops"] for r in rows_one])


def test_batched_members_spend_a_device_seconds_budget_together(tiny_flat: dict[str, Any]) -> None:
    """Under train.device_s every member's share (1 / S) of the process's device-seconds is its spend: the members
    stop together at the first window end after the budget, each evaluated eval.count times on the way."""
    flats = _flats("gan", {"train.device_s": 0.3, "train.steps": 100_000, "eval.count": 2}, tiny_flat, seeds=3)
    history: list[list[Any]] = [[] for _ in flats]
    rows = run_members(flats, [lambda s, v, h=h: h.append((s, v)) for h in history])
    assert {r["status"] for r in rows} == {"completed"} and len({r["steps"] for r in rows}) == 1
    for reports in history:
        assert reports[-1][1]["train.device_s"] >= 0.3 > reports[-2][1]["train.device_s"]
        assert sum("eval.modes" in values for _, values in reports) >= 2


def test_a_member_that_diverges_ends_there_and_the_others_go_on(
    tiny_flat: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Member 1 starts with a NaN weight: it diverges at its first window; members 0 and 2 train as they would alone."""
    from genbench.families import gan_members

    build = gan_members.BatchedGAN.__init__

    def poisoned(self: Any, views: Any, cfg: Any) -> None:
        build(self, views, cfg)
        with torch.no_grad():
            next(self.g.parameters())[1, 0, 0] = math.nan

    flats = _flats("gan", {}, tiny_flat, seeds=3)
    one, rows_one, _, _ = _both(flats)
    monkeypatch.setattr(gan_members.BatchedGAN, "__init__", poisoned)
    many: list[list[Any]] = [[] for _ in flats]
    rows = run_members(flats, [lambda s, v, h=h: h.append((s, v)) for h in many])
    assert rows[1]["status"] == "diverged" and rows[1]["stability.steps_to_diverge"] == 1
    assert [s for s, _ in many[1]] == [5]  # its first window, reported once
    _compare([one[0], one[2]], [many[0], many[2]], TIGHT)
    _same_rows([rows_one[0], rows_one[2]], [rows[0], rows[2]], TIGHT)


def test_member_gradient_norms_and_clipping_are_each_members_own() -> None:
    torch.manual_seed(0)
    grads = [torch.randn(3, 4, 5), torch.randn(3, 5)]  # (S, ...) per tensor, 3 members
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    norms = member_grad_norms(params, max_norm=1.0)
    for i in range(3):
        alone = [torch.nn.Parameter(torch.zeros_like(g[i])) for g in grads]
        for p, g in zip(alone, grads):
            p.grad = g[i].clone()
        assert norms[i] == pytest.approx(float(clip_grads(alone, 1.0)), rel=1e-6)
        for p, q in zip(params, alone):
            assert torch.allclose(p.grad[i], q.grad, rtol=1e-6)


def test_batched_seeds_switch(tiny_flat: dict[str, Any], digits: Any) -> None:
    assert batches(tiny_flat, 4) and not batches({**tiny_flat, "train.batched_seeds": False}, 4)
    assert not batches(tiny_flat, 1) and not batches(tiny_flat, 4, workers=True)
    vae = {"family": "vae", "data.name": "grid25", **FAMILIES.get("vae").debug}
    assert batches(vae, 4) and batches({**vae, "data.name": "digits"}, 4, digits)  # the VAE's conv nets batch too
    assert batches({**vae, "data.name": "digits", "vae.likelihood": "bernoulli"}, 4)  # images, data not loaded
    assert batches({**tiny_flat, "data.name": "digits"}, 4, digits)  # the GAN's conv nets batch too
    assert not batches({**tiny_flat, "data.name": "dirac", "gan.arch": "dirac"}, 4)
    made = {"family": "autoregressive", "data.name": "grid25", **FAMILIES.get("autoregressive").debug}
    assert batches(made, 4) and batches({**made, "data.name": "digits"}, 4, digits)  # the PixelCNN's too
    with pytest.raises(ConfigError, match="expected true, false or auto.*auto batches the seeds"):
        batches({**tiny_flat, "train.batched_seeds": "sometimes"}, 4)


def test_the_flow_batches_on_vectors_and_images(tiny_flat: dict[str, Any], digits: Any) -> None:
    flow = _flats("flow", {}, tiny_flat)[0]
    assert batches(flow, 4) and batches({**flow, "data.name": "digits"}, 4, digits)
    assert batches({**flow, "data.name": "digits", "train.batched_seeds": True}, 4, digits)


def test_a_trial_of_four_seeds_trains_them_batched_and_reports_four_rows(
    tiny_flat: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trial function as Tune runs it (tune.report captured): four seeds, one batched run, four rows."""
    reports: list[dict[str, Any]] = []
    monkeypatch.setattr(trainable.tune, "report", reports.append)
    trial_main({**tiny_flat, "seed": 0}, ("quality.modes",), "quality.modes", training=Training(4, batched=True))
    final = reports[-1]
    assert final["final"] and [r["seed"] for r in final["rows"]] == [0, 1, 2, 3]
    assert {r["train_path"] for r in final["rows"]} == {"batched"}
    assert {r["status"] for r in final["rows"]} <= {"completed", "early_stopped", "diverged"}
    history = [h for report in reports for h in report["history"]]
    assert sorted({(h["seed"], h["step"]) for h in history}) == [(s, t) for s in range(4) for t in (5, 10, 15, 20)]
    assert [len(r["partial_rows"]) for r in reports[:-1]] == [4]  # the evaluation at step 10, before the final one


def test_gan_stability_with_four_seeds_batches_each_trial_in_one_bundle() -> None:
    """The done-when study: every trial of gan_stability at 4 seeds trains them batched, in one bundle of its own."""
    from dataclasses import replace

    from genbench.sweep.resources import ClusterView, trial_request
    from genbench.sweep.spec import load_study
    from genbench.sweep.tuner import study_batches

    study = load_study(STUDIES / "gan_stability.yaml")
    budget = replace(study.dry_run, seeds=4)
    constants = study.run_settings(budget)
    assert study_batches(study, budget, constants, None)
    assert not study_batches(study, budget, {**constants, "train.batched_seeds": False}, None)
    view = ClusterView({"CPU": 8.0})
    assert trial_request(study, 4, view, batched=True).bundles == [{"CPU": 1.0}]
    assert trial_request(study, 4, view).lanes == 4  # per-seed: a bundle per seed, behind the trial's empty one


def test_a_frozen_member_keeps_its_weights_while_the_others_step() -> None:
    from genbench.nets.ensemble import stack
    from genbench.train.members import Frozen

    torch.manual_seed(0)
    net = stack([torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)) for _ in range(3)])
    before = [t.detach().clone() for t in (*net.parameters(), *net.buffers())]
    frozen = Frozen()
    frozen.freeze(1, [net])
    net(torch.randn(3, 8, 3)).square().sum().backward()  # batch norm's running statistics move in training mode
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    frozen.restore()
    after = [*net.parameters(), *net.buffers()]
    assert all(torch.equal(a[1], b[1]) for a, b in zip(after, before))
    assert all(not torch.equal(a[0], b[0]) for a, b in zip(after, before))


def test_diffusion_batches_its_denoisers_but_not_dropout_on_images(tiny_flat: dict[str, Any], digits: Any) -> None:
    """The MLP and the U-Net batch; the U-Net's dropout trains per seed, with the reason when asked to batch."""
    flat = {**_common(tiny_flat), "family": "diffusion", **FAMILIES.get("diffusion").debug}
    images = {**flat, "data.name": "digits"}
    assert batches(flat, 4) and batches(images, 4, digits) and batches({**flat, "diffusion.dropout": 0.1}, 4)
    assert not batches({**images, "diffusion.dropout": 0.1}, 4, digits)
    with pytest.raises(ConfigError, match="diffusion.dropout > 0 .* train per seed"):
        batches({**images, "diffusion.dropout": 0.1, "train.batched_seeds": True}, 4, digits)
    # data unknown when a study was planned: the batched model refuses, and run_members trains each seed on its own
    from genbench.config import from_flat
    from genbench.families.diffusion_members import BatchedDiffusion
    from genbench.nets.ensemble import NotBatchable

    cfg = from_flat({**images, "diffusion.dropout": 0.1})
    assert BatchedDiffusion.unsupported(cfg, None) == ""
    with pytest.raises(NotBatchable, match="dropout"):
        BatchedDiffusion([FAMILIES.get("diffusion").build(cfg, digits) for _ in range(2)], cfg)


def test_the_vae_bernoulli_head_on_images_steps_as_its_seeds_do_in_row_chunks(digits: Any) -> None:
    """Two VAE members on digits with the Bernoulli head, micro-batched in chunks of 8 rows (per seed 16): three
    batched steps give each member the losses and weights of its per-seed steps from the same noise."""
    from genbench.config import from_flat
    from genbench.families.vae_members import BatchedVAE

    cfg = from_flat(
        {"family": "vae", "data.name": "digits", "vae.likelihood": "bernoulli", **FAMILIES.get("vae").debug}
    )

    def built(seed: int) -> Any:
        torch.manual_seed(seed)
        view = FAMILIES.get("vae").build(cfg, digits)
        view.chunk = 16  # 3 chunks of a 40-row batch alone, 5 of 8 rows batched
        return view

    alone, members = [built(s) for s in range(2)], BatchedVAE([built(s) for s in range(2)], cfg)
    batch = digits.train[:80].view(2, 40, 1, 8, 8)  # (S, B, C, H, W)
    gens = [torch.Generator().manual_seed(10 + s) for s in range(2)]
    many = [members.train_step(batch, gens) for _ in range(3)]
    for s, view in enumerate(alone):
        torch.manual_seed(10 + s)  # where member s's generator started
        for step in many:
            one = view.train_step(batch[s])
            assert {k: float(v) for k, v in one.items()} == pytest.approx({k: float(v[s]) for k, v in step.items()})
        for a, b in zip(view.params, members.write(s).params):  # the weights after three steps
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
