"""Published GAN protocols as run keys: per-network activation, named initialisation, PacGAN's packing convention,
the zero-centred gradient penalty and the Dirac-GAN (Mescheder et al. 2018)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from conftest import TINY
from genbench.config import from_flat
from genbench.data import load_dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.gan import PENALTIES
from genbench.metrics.features import sliced_wasserstein
from genbench.nets.mlp import Maxout

DIRAC = {
    "family": "gan",
    "data.name": "dirac",
    "data.n_train": 64,
    "data.n_test": 64,
    "gan.arch": "dirac",
    "train.batch_size": 8,
    "optim.lr_g": 0.01,
    "optim.lr_d": 0.01,
}


def _linear(weights: list[float], bias: float = 0.0) -> nn.Linear:
    layer = nn.Linear(len(weights), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
        layer.bias.fill_(bias)
    return layer


def _layers(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


def test_zero_centred_gp_known_answers() -> None:
    zero_gp = PENALTIES.get("zero_gp")
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    assert zero_gp(_linear([0.0, 0.0], bias=3.0), real, fake).item() == 0.0  # constant D: no gradient
    assert zero_gp(_linear([0.6, 0.8]), real, fake).item() == pytest.approx(1.0, rel=1e-5)  # |grad| = 1, squared


def test_each_network_has_its_own_activation(make_gan: Callable[..., Any]) -> None:
    gan = make_gan({"gan.g_activation": "relu", "gan.d_activation": "maxout", "gan.activation": "leaky_relu"})
    assert _layers(gan.g, nn.ReLU) and not _layers(gan.g, Maxout) and not _layers(gan.g, nn.LeakyReLU)
    assert _layers(gan.d, Maxout) and not _layers(gan.d, nn.ReLU)
    shared = make_gan({"gan.activation": "leaky_relu"})  # empty g_/d_activation: both follow gan.activation
    assert _layers(shared.g, nn.LeakyReLU) and _layers(shared.d, nn.LeakyReLU)


@pytest.mark.parametrize("sn", [False, True])
def test_normal_init_draws_weights_at_init_std_and_zero_biases(make_gan: Callable[..., Any], sn: bool) -> None:
    gan = make_gan({"gan.init": "normal", "gan.init_std": 0.05, "gan.g_width": 64, "gan.spectral_norm": sn})
    hidden = _layers(gan.g, nn.Linear)[1]  # (64, 64): 4,096 draws
    assert hidden.weight.std().item() == pytest.approx(0.05, rel=0.05)
    assert all(layer.bias.abs().max() == 0 for net in (gan.g, gan.d) for layer in _layers(net, nn.Linear))
    if sn:  # under spectral norm the stored original weights are the ones drawn
        original = _layers(gan.d, nn.Linear)[1].parametrizations.weight.original
        assert original.std().item() == pytest.approx(0.05, rel=0.1)


def test_xavier_init_stays_within_glorots_bound(make_gan: Callable[..., Any]) -> None:
    gan = make_gan({"gan.init": "xavier", "gan.g_width": 64})
    hidden = _layers(gan.g, nn.Linear)[1]
    bound = (6 / (64 + 64)) ** 0.5
    assert hidden.weight.abs().max().item() <= bound and hidden.weight.abs().max().item() > 0.9 * bound
    assert make_gan({"gan.init": "pytorch"}).g[0].bias.abs().max() > 0  # PyTorch's default draws biases


@pytest.mark.parametrize("convention, packed_rows", [("split", 32), ("pacgan", 64)])
def test_packing_conventions(make_gan: Callable[..., Any], convention: str, packed_rows: int) -> None:
    """batch 64, pack 2: genbench splits 64 samples into 32 pairs; PacGAN's code makes 64 pairs of 128 samples."""
    gan = make_gan({"gan.pack": 2, "gan.pack_convention": convention})
    seen: list[tuple[int, ...]] = []
    gan.d.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    gan.train_step(torch.randn(64 * gan.batches_per_step, 2))
    assert seen and all(shape == (packed_rows, 4) for shape in seen)  # (packed examples, pack * D)


def test_split_packing_needs_a_divisible_batch_and_pacgan_does_not() -> None:
    with pytest.raises(ConfigError, match="gan.pack_convention: pacgan"):
        from_flat({**TINY, "train.batch_size": 63, "gan.pack": 2})
    assert from_flat({**TINY, "train.batch_size": 63, "gan.pack": 2, "gan.pack_convention": "pacgan"})


def _dirac(flat: dict[str, Any]) -> Any:
    torch.manual_seed(0)
    cfg = from_flat({**DIRAC, **flat})
    return FAMILIES.get("gan").build(cfg, load_dataset(cfg.data))


def test_dirac_gan_is_one_parameter_each_and_its_swd_is_theta() -> None:
    gan = _dirac({})
    assert [p.numel() for p in gan.g.parameters()] == [1] and [p.numel() for p in gan.d.parameters()] == [1]
    samples = gan.sample(16)  # (16, 1): every sample is theta
    assert samples.shape == (16, 1) and torch.equal(samples, torch.full((16, 1), gan.g.theta.item()))
    assert sliced_wasserstein(samples, torch.zeros(16, 1)) == pytest.approx(abs(gan.g.theta.item()))


@pytest.mark.parametrize("flat, key", [({"gan.pack": 2}, "gan.pack"), ({"data.name": "grid25"}, "gan.arch")])
def test_dirac_gan_refuses_what_it_cannot_be(flat: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        _dirac(flat)


def test_r1_converges_where_the_unregularised_game_circles() -> None:
    """Mescheder et al.'s finding at test size: after the same 800 steps, R1 is near theta = 0, minimax is not."""
    distance = {}
    for name, flat in (
        ("minimax", {"gan.loss": "minimax"}),
        ("r1", {"gan.loss": "minimax", "gan.penalty": "r1", "gan.penalty_weight": 1.0}),
    ):
        gan = _dirac(flat)
        for _ in range(800):
            gan.train_step(torch.zeros(8, 1))
        distance[name] = abs(gan.g.theta.item())
    assert distance["r1"] < 0.02 and distance["minimax"] > 0.2
