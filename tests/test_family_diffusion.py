"""Diffusion family: schedules, forward process, samplers and their cost, training, and the variational bound."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from genbench.config import DataConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.families.diffusion import (
    Schedule,
    cosine_alpha_bar,
    ddim_timesteps,
    discretised_gaussian_log_prob,
    make_betas,
    q_sample,
)
from genbench.train.run import run

TINY: dict[str, Any] = {
    "family": "diffusion",
    "data.n_train": 2000,
    "data.n_test": 500,
    "train.steps": 20,
    "train.batch_size": 64,
    "train.log_every": 5,
    "eval.every": 10,
    "eval.n_samples": 200,
    "diffusion.timesteps": 50,
    "diffusion.ddim_steps": 10,
    "diffusion.mlp_width": 32,
    "diffusion.mlp_depth": 2,
    "diffusion.time_dim": 16,
    "diffusion.unet_channels": 8,
    "diffusion.unet_blocks": 1,
}


@pytest.fixture(scope="module")
def grid() -> Dataset:
    return load_dataset(DataConfig(name="grid25", n_train=2000, n_test=500))


def build(data: Dataset, seed: int = 0, **overrides: Any) -> Any:
    torch.manual_seed(seed)
    cfg = from_flat({**TINY, "data.name": data.name, **overrides})  # overrides may name a registered data set
    return FAMILIES.get("diffusion").build(cfg, data)


class CountingNet(nn.Module):
    """Wraps a denoiser and counts its forward calls."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x, t)


class OracleNet(nn.Module):
    """The exact noise predictor for data x0 ~ N(0, I): E[eps | x_t] = sqrt(1 - alpha_bar_t) x_t."""

    def __init__(self, sched: Schedule) -> None:
        super().__init__()
        self.sched = sched

    def forward(self, x: torch.Tensor, t_scaled: torch.Tensor) -> torch.Tensor:
        t = (t_scaled * self.sched.timesteps / 1000.0).round().long()  # undo the family's rescaling
        return self.sched.sqrt_one_minus_alpha_bar[t].view(-1, *([1] * (x.dim() - 1))) * x


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"diffusion.sampler": "euler"}, "diffusion.sampler"),
        ({"diffusion.schedule": "quadratic"}, "diffusion.schedule"),
        ({"diffusion.ddim_steps": 51}, "diffusion.ddim_steps"),
        ({"diffusion.eta": 1.5}, "diffusion.eta"),
        ({"diffusion.ema": 1.0}, "diffusion.ema"),
        ({"diffusion.schedule": "linear", "diffusion.timesteps": 20}, "diffusion.timesteps"),
        ({"optim.lr": 0.0}, "optim.lr"),
        ({"optim.lr_decay": "step"}, "optim.lr_decay"),
    ],
)
def test_bad_config_names_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({**TINY, **overrides})
    assert err.value.key == key


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("timesteps", [100, 1000])
def test_alpha_bar_decreases_from_one_to_zero(schedule: str, timesteps: int) -> None:
    alpha_bar = Schedule(schedule, timesteps, "small").alpha_bar
    assert alpha_bar.shape == (timesteps,)
    assert (alpha_bar[1:] < alpha_bar[:-1]).all()
    assert alpha_bar[0] > 0.99 and alpha_bar[-1] < 1e-3


def test_linear_betas_scale_with_timesteps() -> None:
    betas = make_betas("linear", 250)  # 1e-4..0.02 at T = 1000, times 1000 / T
    assert betas[0].item() == pytest.approx(4e-4) and betas[-1].item() == pytest.approx(0.08)


def test_cosine_alpha_bar_matches_formula_and_clip() -> None:
    timesteps, s = 1000, 0.008
    betas = make_betas("cosine", timesteps)
    alpha_bar = torch.cumprod(1 - betas, dim=0)
    t = torch.arange(1, timesteps + 1, dtype=torch.float64)
    f = torch.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    unclipped = betas < 0.999
    assert torch.allclose(alpha_bar[unclipped], f[unclipped], rtol=1e-9, atol=1e-12)
    assert betas.max().item() == pytest.approx(0.999) and not unclipped[-1]  # the last beta is clipped
    assert torch.allclose(cosine_alpha_bar(t, timesteps), f)


def test_q_sample_mean_and_variance() -> None:
    sched = Schedule("cosine", 1000, "small")
    x0 = torch.tensor([1.5, -0.5]).expand(200_000, 2)
    for step in (10, 500, 900):
        t = torch.full((len(x0),), step)
        xt = q_sample(sched, x0, t, torch.randn_like(x0))
        ab = sched.alpha_bar[step].item()
        assert torch.allclose(xt.mean(0), math.sqrt(ab) * x0[0], atol=0.01)
        assert torch.allclose(xt.var(0), torch.full((2,), 1 - ab), rtol=0.02)


def test_ddim_sub_sequence_is_even_and_full_at_T() -> None:
    assert ddim_timesteps(1000, 100).tolist() == list(range(0, 1000, 10))
    assert ddim_timesteps(50, 50).tolist() == list(range(50))


@pytest.mark.parametrize("data_name", ["grid", "digits"])
def test_train_step_contract_and_loss_goes_down(request: pytest.FixtureRequest, data_name: str) -> None:
    data = request.getfixturevalue(data_name)
    fam = build(data, **{"optim.lr": 3e-3, "train.steps": 80})
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(80):
        out = fam.train_step(data.train[torch.randint(len(data.train), (32,), generator=gen)])
        losses.append(out["train.loss"])
    assert {"train.loss", "train.grad_norm"} <= set(out)
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in out.values())
    first, last = torch.stack(losses[:15]).mean(), torch.stack(losses[-15:]).mean()
    assert last < 0.8 * first


@pytest.mark.parametrize("data_name, shape", [("grid", (2,)), ("digits", (1, 8, 8))])
@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samples_shape_range_and_nfe(
    request: pytest.FixtureRequest, data_name: str, shape: tuple[int, ...], sampler: str
) -> None:
    data = request.getfixturevalue(data_name)
    fam = build(data, **{"diffusion.sampler": sampler, "diffusion.ddim_steps": 7})
    fam.net = CountingNet(fam.net)
    x = fam.sample(33)
    assert x.shape == (33, *shape) and torch.isfinite(x).all()
    if data.is_image:
        assert x.min() >= 0 and x.max() <= 1
    expected = 50 if sampler == "ddpm" else 7
    assert fam.sample_nfe == expected and fam.net.calls == expected
    assert fam.net.training  # sampling restores train mode


def test_ddim_eta0_is_deterministic_given_x_T(grid: Dataset) -> None:
    fam = build(grid, **{"diffusion.sampler": "ddim", "diffusion.eta": 0.0})
    x_T = torch.randn(64, 2)
    torch.manual_seed(1)
    a = fam.denoise(x_T)
    torch.manual_seed(2)
    assert torch.equal(a, fam.denoise(x_T))
    torch.manual_seed(0)
    s1 = fam.sample(16)
    torch.manual_seed(0)
    assert torch.equal(s1, fam.sample(16))  # the same seed draws the same x_T
    fam.cfg.eta = 1.0
    torch.manual_seed(1)
    b = fam.denoise(x_T)
    torch.manual_seed(2)
    assert not torch.allclose(b, fam.denoise(x_T))  # eta > 0 adds noise


@pytest.mark.parametrize("data_name", ["grid", "digits"])
def test_ddim_every_step_eta1_equals_ddpm(request: pytest.FixtureRequest, data_name: str) -> None:
    """With tau = all T steps and eta = 1, DDIM's update is DDPM's posterior step with beta~_t (Song et al.)."""
    data = request.getfixturevalue(data_name)
    fam = build(data, **{"diffusion.variance": "small", "diffusion.ddim_steps": 50, "diffusion.eta": 1.0})
    x_T = torch.randn(16, *data.shape)
    out = {}
    for sampler in ("ddpm", "ddim"):
        fam.cfg.sampler = sampler
        torch.manual_seed(3)
        out[sampler] = fam.denoise(x_T)
    assert torch.allclose(out["ddpm"], out["ddim"], atol=1e-4)


def test_ema_tracks_weights_and_is_used_for_sampling(grid: Dataset) -> None:
    fam = build(grid, **{"diffusion.ema": 0.9})
    for _ in range(5):
        fam.train_step(grid.train[:64])
    assert fam.sampling_net() is fam.ema_net
    diffs = [(a - b).abs().max() for a, b in zip(fam.ema_net.parameters(), fam.net.parameters())]
    assert max(diffs) > 0
    plain = build(grid, **{"diffusion.ema": 0.0})
    assert plain.ema_net is None and plain.sampling_net() is plain.net


def test_nll_is_off_by_default(grid: Dataset) -> None:
    assert build(grid).nll_method is None


def test_bound_equals_exact_nll_for_gaussian_data_with_oracle() -> None:
    """For x0 ~ N(0, I) and the exact denoiser, 'large' variance makes every reverse step t >= 2 exact.

    The bound then equals the true NLL but for the decoder, whose variance is beta~_2 (Ho et al.'s choice)
    instead of the true beta_1: that gap is known in closed form.
    """
    data = Dataset("gauss", torch.randn(10_000, 2), torch.randn(2000, 2))
    fam = build(
        data,
        **{
            "data.name": "grid25",
            "diffusion.nll_bound": True,
            "diffusion.timesteps": 1000,
            "diffusion.ddim_steps": 10,
            "diffusion.schedule": "linear",
            "diffusion.variance": "large",
        },
    )
    fam.mean, fam.std = torch.zeros(2), torch.ones(2)
    fam.net = OracleNet(fam.sched)
    x = data.test
    exact = (0.5 * x.pow(2) + 0.5 * math.log(2 * math.pi)).sum(1)  # (B,)
    ratio = fam.sched.betas[0].double() / fam.sched.model_log_var[0].double().exp()  # true / decoder variance
    decoder_gap = 2 * 0.5 * (ratio - 1 - ratio.log()).item()  # E[-log N(x; m, v')] - E[-log N(x; m, v)], D = 2
    bound = fam.nll(x)
    assert bound.shape == (len(x),) and "bound" in fam.nll_method
    assert bound.mean().item() == pytest.approx(exact.mean().item() + decoder_gap, abs=0.02)
    fam.sched = Schedule("linear", 1000, "small")  # beta~_t is too small for these reverse steps: a looser bound
    fam.net = OracleNet(fam.sched)
    assert fam.nll(x).mean() > exact.mean() + decoder_gap + 0.05


@pytest.mark.parametrize("data_name", ["grid", "digits"])
def test_bound_finite_and_prior_term_vanishes(request: pytest.FixtureRequest, data_name: str) -> None:
    data = request.getfixturevalue(data_name)
    fam = build(data, **{"diffusion.nll_bound": True, "diffusion.timesteps": 1000, "diffusion.ddim_steps": 10})
    batch = data.test[:8]
    terms = fam.bound_terms(batch)  # (B, T + 1)
    assert terms.shape == (8, 1001) and torch.isfinite(terms).all()
    assert terms[:, -1].abs().max() < 1e-3  # L_T ~ 0 when alpha_bar_T ~ 0
    assert (terms[:, 1:-1] >= -1e-5).all()  # KL terms
    nll = fam.nll(batch)
    assert nll.shape == (8,) and torch.isfinite(nll).all()
    if data.is_image:
        assert (nll > 0).all() and "17 levels" in fam.nll_method  # -log of a discrete probability


def test_discretised_decoder_sums_to_one_over_levels() -> None:
    levels = 17
    values = torch.linspace(-1, 1, levels)  # every level of a pixel
    for mean, log_var in ((0.3, -2.0), (-0.95, -8.0), (1.4, 0.5), (0.0, -12.0)):
        m, lv = torch.full((levels,), mean), torch.full((levels,), log_var)
        total = discretised_gaussian_log_prob(values, m, lv, levels).exp().sum()
        assert total.item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("data_name", ["grid25", "digits"])
def test_platform_run_completes_with_cost_and_likelihood(data_name: str) -> None:
    flat = {
        **TINY,
        "data.name": data_name,
        "train.steps": 10,
        "eval.n_samples": 50,
        "diffusion.nll_bound": True,
        "diffusion.timesteps": 30,
        "diffusion.ddim_steps": 5,
    }
    row = run(flat)
    assert row["status"] == "completed", row.get("error")
    assert row["cost.sample_nfe"] == 5 and row["cost.sample_per_s"] > 0
    assert math.isfinite(row["likelihood.nll"]) and row["likelihood.method"].startswith("bound")
    if data_name == "grid25":
        assert 0 <= row["quality.modes"] <= 25
    else:
        assert row["likelihood.bpd"] > 0


@pytest.mark.parametrize("data_name", ["grid", "digits"])
def test_shared_timestep_broadcasts_like_a_per_row_timestep(request: pytest.FixtureRequest, data_name: str) -> None:
    data = request.getfixturevalue(data_name)
    net = build(data).net.eval()
    x = torch.randn(5, *data.shape)
    with torch.no_grad():
        assert torch.allclose(net(x, torch.tensor([420.0])), net(x, torch.full((5,), 420.0)), atol=1e-6)


def test_too_many_unet_levels_is_a_config_error(digits: Dataset) -> None:
    with pytest.raises(ConfigError) as err:
        build(digits, **{"diffusion.unet_levels": 5})  # 8x8 halves at most 3 times
    assert err.value.key == "diffusion.unet_levels"
