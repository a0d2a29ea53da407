"""GAN components: a shared suite over losses x penalties x norms x packing, and per-component known answers."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from genbench.config import from_flat, to_flat
from genbench.gan import GAN_LOSSES, NORMS, PENALTIES
from genbench.gan.presets import GAN_PRESETS
from genbench.nets.mlp import ACTIVATIONS, Maxout

REQUIRED = ("train.loss_d", "train.loss_g", "train.grad_norm_d", "train.grad_norm_g")


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(before[name], p) for name, p in module.named_parameters())


def _step_and_check(gan: Any, batch_size: int = 64, steps: int = 1) -> dict[str, torch.Tensor]:
    g0, d0 = _params(gan.g), _params(gan.d)
    for _ in range(steps):
        out = gan.train_step(torch.randn(batch_size * gan.batches_per_step, 2))
    assert set(REQUIRED) <= set(out)
    for key, value in out.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad, key
        assert torch.isfinite(value), key
    assert _changed(g0, gan.g) and _changed(d0, gan.d)
    return out


CASES = list(itertools.product(GAN_LOSSES.names(), PENALTIES.names(), (False, True), (1, 2)))


@pytest.mark.parametrize("loss, penalty, sn, pack", CASES)
def test_every_loss_penalty_norm_pack_trains(
    make_gan: Callable[..., Any], loss: str, penalty: str, sn: bool, pack: int
) -> None:
    gan = make_gan({"gan.loss": loss, "gan.penalty": penalty, "gan.spectral_norm": sn, "gan.pack": pack})
    out = _step_and_check(gan)
    if penalty == "none":
        assert out["train.penalty"] == 0
    assert gan.sample(7).shape == (7, 2)


def test_d_steps_consume_one_batch_each(make_gan: Callable[..., Any]) -> None:
    gan = make_gan({"gan.d_steps": 3})
    assert gan.batches_per_step == 3
    _step_and_check(gan)


@pytest.mark.parametrize("name", GAN_LOSSES.names())
def test_loss_signs(name: str) -> None:
    loss = GAN_LOSSES.get(name)()
    high, low = torch.ones(16, 1), -torch.ones(16, 1)
    d_good, d_bad = loss.d_loss(high, low), loss.d_loss(low, high)  # D right vs D wrong
    assert d_good.dim() == 0 and d_good < d_bad
    g_good, g_bad = loss.g_loss(high), loss.g_loss(low)  # G fools D vs G caught
    assert g_good.dim() == 0 and g_good < g_bad


def test_non_saturating_known_values() -> None:
    loss = GAN_LOSSES.get("non_saturating")()
    zeros = torch.zeros(4, 1)
    assert loss.d_loss(zeros, zeros).item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())
    assert loss.d_loss(torch.full((4, 1), 20.0), torch.full((4, 1), -20.0)).item() < 1e-8


@pytest.mark.parametrize("name", PENALTIES.names())
def test_every_penalty_is_a_nonnegative_scalar(name: str) -> None:
    torch.manual_seed(0)
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    value = PENALTIES.get(name)(d, torch.randn(32, 2), torch.randn(32, 2))
    assert value.dim() == 0 and torch.isfinite(value) and value >= 0
    if name != "none":
        value.backward()  # differentiable in D's parameters
        assert d[0].weight.grad is not None and d[0].weight.grad.abs().sum() > 0


def _linear(weight: list[float], bias: float = 0.0) -> nn.Linear:
    d = nn.Linear(2, 1)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([weight]))
        d.bias.fill_(bias)
    return d


def test_gradient_penalty_known_answers() -> None:
    gp = PENALTIES.get("gradient_penalty")
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    assert gp(_linear([0.6, 0.8]), real, fake).item() == pytest.approx(0.0, abs=1e-10)  # 1-Lipschitz
    assert gp(_linear([1.2, 1.6]), real, fake).item() == pytest.approx(1.0, rel=1e-5)  # |grad| = 2


def test_r1_known_answers() -> None:
    r1 = PENALTIES.get("r1")
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    assert r1(_linear([0.0, 0.0], bias=3.0), real, fake).item() == 0.0  # constant D
    assert r1(_linear([0.6, 0.8]), real, fake).item() == pytest.approx(0.5, rel=1e-5)


@pytest.mark.parametrize("name", NORMS.names())
def test_every_norm_wraps_a_linear_layer(name: str) -> None:
    layer = NORMS.get(name)(nn.Linear(3, 4))
    assert layer(torch.randn(5, 3)).shape == (5, 4)


def test_spectral_norm_bounds_the_layer() -> None:
    torch.manual_seed(0)
    layer = NORMS.get("spectral_norm")(nn.Linear(6, 6))
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(10.0)
    for _ in range(30):  # power iterations run in training mode
        layer(torch.randn(2, 6))
    assert torch.linalg.matrix_norm(layer.weight, ord=2).item() == pytest.approx(1.0, rel=1e-2)


def _all_within(module: nn.Module, clip: float) -> bool:
    return all(p.abs().max().item() <= clip + 1e-12 for p in module.parameters())


def test_wasserstein_without_penalty_clips_critic(make_gan: Callable[..., Any]) -> None:
    gan = make_gan({"gan.loss": "wasserstein", "gan.penalty": "none", "gan.clip": 0.01})
    assert not _all_within(gan.d, 0.01)
    _step_and_check(gan)
    assert _all_within(gan.d, 0.01) and not _all_within(gan.g, 0.01)


@pytest.mark.parametrize(
    "flat",
    [
        {"gan.loss": "wasserstein", "gan.spectral_norm": True},
        {"gan.loss": "wasserstein", "gan.penalty": "gradient_penalty"},
        {"gan.loss": "hinge"},
    ],
)
def test_no_clipping_when_bounded_or_not_wasserstein(make_gan: Callable[..., Any], flat: dict[str, Any]) -> None:
    gan = make_gan({**flat, "gan.clip": 0.01})
    _step_and_check(gan)
    assert gan.clip == 0 and not _all_within(gan.d, 0.01)


@pytest.mark.parametrize("activation", ACTIVATIONS.names())
@pytest.mark.parametrize("g_bn, d_bn", [(False, False), (True, False), (False, True), (True, True)])
def test_activations_and_batch_norm(make_gan: Callable[..., Any], activation: str, g_bn: bool, d_bn: bool) -> None:
    gan = make_gan(
        {
            "gan.activation": activation,
            "gan.g_batch_norm": g_bn,
            "gan.d_batch_norm": d_bn,
            "gan.maxout_k": 3,
            "gan.penalty": "r1",
        }
    )
    assert any(isinstance(m, Maxout) for m in gan.d.modules()) == (activation == "maxout")
    assert any(isinstance(m, nn.BatchNorm1d) for m in gan.g.modules()) == g_bn
    assert any(isinstance(m, nn.BatchNorm1d) for m in gan.d.modules()) == d_bn
    _step_and_check(gan)
    samples = gan.sample(5)
    assert samples.shape == (5, 2) and torch.isfinite(samples).all() and gan.g.training


def test_ema_generator_is_used_for_samples(make_gan: Callable[..., Any]) -> None:
    gan = make_gan({"gan.ema": 0.9})
    start = _params(gan.g_ema)
    _step_and_check(gan, steps=3)
    assert _changed(start, gan.g_ema)
    assert any(not torch.equal(p, q) for p, q in zip(gan.g_ema.parameters(), gan.g.parameters()))
    assert all(not p.requires_grad for p in gan.g_ema.parameters())
    torch.manual_seed(5)
    samples = gan.sample(10)
    torch.manual_seed(5)
    z = torch.randn(10, gan.cfg.latent_dim)
    with torch.no_grad():
        assert torch.equal(samples, gan.g_ema(z)) and not torch.equal(samples, gan.g(z))


def test_no_ema_samples_from_generator(make_gan: Callable[..., Any]) -> None:
    gan = make_gan()
    assert gan.g_ema is None
    torch.manual_seed(5)
    samples = gan.sample(10)
    torch.manual_seed(5)
    with torch.no_grad():
        assert torch.equal(samples, gan.g(torch.randn(10, gan.cfg.latent_dim)))


@pytest.mark.parametrize("preset", GAN_PRESETS)
def test_every_preset_is_a_valid_config(make_gan: Callable[..., Any], preset: str) -> None:
    doc, overrides = GAN_PRESETS[preset]
    assert doc.strip()
    flat = to_flat(from_flat({"family": "gan", **overrides}))
    assert all(flat[key] == value for key, value in overrides.items())
    _step_and_check(make_gan(overrides))
