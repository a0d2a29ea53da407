"""Autoregressive family: causal masks (MADE, PixelCNN), exact normalisation, sampling, and the family contract."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch
from torch import nn

from genbench.config import DataConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.nets.masked import MADE, MaskedConv2d, PixelCNN
from genbench.train.run import run

TINY: dict[str, Any] = {
    "family": "autoregressive",
    "data.n_train": 2000,
    "data.n_test": 500,
    "train.steps": 20,
    "train.batch_size": 64,
    "train.log_every": 5,
    "eval.every": 10,
    "eval.n_samples": 200,
    "autoregressive.made_width": 16,
    "autoregressive.mixtures": 5,
    "autoregressive.pixel_channels": 12,
    "autoregressive.pixel_blocks": 1,
    "autoregressive.first_kernel": 3,
}


FAST = {"optim.lr": 1.0e-2, "optim.lr_decay": "none"}  # small models learn a skewed law within 30 steps


def build(data: Dataset, **overrides: Any) -> Any:
    cfg = from_flat({**TINY, "data.name": "digits" if data.is_image else "grid25", **overrides})
    return FAMILIES.get("autoregressive").build(cfg, data)


def tiny_images(shape: tuple[int, int, int], levels: int, n: int = 256) -> Dataset:
    """Skewed random images on `levels` values: most values low, so the trained model is far from uniform."""
    gen = torch.Generator().manual_seed(0)
    values = (torch.rand(n, *shape, generator=gen) ** 3 * levels).floor().clamp(max=levels - 1)
    images = values / (levels - 1)
    return Dataset("tiny", images, images[:32], levels=levels)


def trained(family: Any, data: Dataset, steps: int = 30) -> Any:
    for _ in range(steps):
        family.train_step(data.train[torch.randint(len(data.train), (64,))])
    return family


# ---- causality -----------------------------------------------------------------------------------------


def test_made_output_d_depends_only_on_inputs_before_d() -> None:
    torch.manual_seed(0)
    dim = 5
    net = MADE(dim, params_per_dim=6, depth=2, width=20)
    x = torch.randn(8, dim, requires_grad=True)
    out = net(x)  # (8, D, 6)
    for d in range(dim):
        (grad,) = torch.autograd.grad(out[:, d].sum(), x, retain_graph=True)
        assert torch.all(grad[:, d:] == 0), f"coordinate {d} sees itself or later coordinates"
        assert torch.all(grad[:, :d].abs().sum(dim=0) > 0), f"coordinate {d} ignores an earlier coordinate"


def _raster_index(colors: int, height: int, width: int) -> torch.Tensor:
    """Position of each sub-pixel in the ordering rows, then columns, then R -> G -> B: (C, H, W)."""
    c, r, w = torch.meshgrid(torch.arange(colors), torch.arange(height), torch.arange(width), indexing="ij")
    return (r * width + w) * colors + c


@pytest.mark.parametrize("colors", [1, 3])
def test_pixelcnn_output_depends_only_on_earlier_subpixels(colors: int) -> None:
    torch.manual_seed(0)
    shape = (colors, 4, 4)
    net = PixelCNN(colors, params_per_value=3, channels=12, blocks=2, first_kernel=5)
    x = torch.rand(4, *shape, requires_grad=True)
    out = net(x)  # (4, C, 3, H, W)
    order = _raster_index(*shape)
    for c, r, w in itertools.product(*(range(s) for s in shape)):
        (grad,) = torch.autograd.grad(out[:, c, :, r, w].sum(), x, retain_graph=True)
        seen = grad.abs().sum(dim=0)  # (C, H, W)
        assert torch.all(seen[order >= order[c, r, w]] == 0), f"sub-pixel {(c, r, w)} sees itself or later"
        if w > 0:
            assert torch.all(seen[:, r, w - 1] > 0), "the pixel to the left must be seen"
        if c > 0:
            assert torch.all(seen[:c, r, w] > 0), "earlier colours of the same pixel must be seen"


def test_type_b_layer_sees_its_own_position_but_nothing_later() -> None:
    torch.manual_seed(0)
    layer = MaskedConv2d(3, 6, 3, "B", colors=3)  # feature groups of 2 maps per colour
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = layer(x)  # (2, 6, 4, 4)
    for group in range(3):
        (grad,) = torch.autograd.grad(out[:, 2 * group, 2, 2].sum(), x, retain_graph=True)
        assert torch.all(grad[:, group + 1 :, 2, 2] == 0) and torch.all(grad[:, :, 2, 3:] == 0)
        assert torch.all(grad[:, :, 3:] == 0)
        assert torch.all(grad[:, : group + 1, 2, 2] != 0), "type B must see colours up to its own"


def test_pixelcnn_top_rows_alone_give_the_same_top_outputs() -> None:
    torch.manual_seed(0)
    net = PixelCNN(3, params_per_value=4, channels=12, blocks=2, first_kernel=5)
    x = torch.rand(3, 3, 6, 5)
    full = net(x)
    for rows in (1, 3, 5):
        torch.testing.assert_close(net(x[:, :, :rows]), full[..., :rows, :], rtol=1e-5, atol=1e-6)


# ---- exact normalisation and sampling ------------------------------------------------------------------


def _all_images(shape: tuple[int, int, int], levels: int) -> torch.Tensor:
    values = torch.tensor(list(itertools.product(range(levels), repeat=math.prod(shape))), dtype=torch.float32)
    return (values / (levels - 1)).view(-1, *shape)  # (L^(CHW), C, H, W)


CASES = [
    ((1, 2, 2), 3, "categorical"),
    ((1, 2, 2), 3, "logistic"),
    ((3, 1, 2), 2, "categorical"),
    ((3, 2, 1), 3, "logistic"),
]


@pytest.mark.parametrize("shape, levels, head", CASES)
def test_probabilities_of_all_images_sum_to_one(shape: tuple[int, int, int], levels: int, head: str) -> None:
    torch.manual_seed(0)
    data = tiny_images(shape, levels)
    family = trained(build(data, **FAST, **{"autoregressive.pixel_head": head}), data)
    probs = torch.exp(-family.nll(_all_images(shape, levels)).double())
    assert probs.max() > 2.0 / len(probs), "the trained model should be far from uniform"
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("shape, head", [((1, 2, 2), "categorical"), ((3, 1, 1), "logistic")])
def test_sample_frequencies_match_exact_probabilities(shape: tuple[int, int, int], head: str) -> None:
    torch.manual_seed(0)
    data = tiny_images(shape, 2)
    family = trained(build(data, **FAST, **{"autoregressive.pixel_head": head}), data)
    images = _all_images(shape, 2)  # (K, C, H, W)
    exact = torch.exp(-family.nll(images))  # (K,)
    samples = family.sample(20_000).flatten(1)  # (N, C*H*W) on {0, 1}
    index = (samples * 2 ** torch.arange(samples.shape[1] - 1, -1, -1)).sum(dim=1).long()  # binary code
    freq = torch.bincount(index, minlength=len(images)).float() / len(samples)
    assert (freq - exact).abs().max().item() < 0.02


@pytest.mark.parametrize("component", ["gaussian", "logistic"])
def test_toy_density_integrates_to_one(grid25: Dataset, component: str) -> None:
    torch.manual_seed(0)
    family = trained(build(grid25, **{"autoregressive.component": component}), grid25, steps=50)
    step = 0.02
    axis = torch.arange(-7.0, 7.0, step) + step / 2
    grid = torch.cartesian_prod(axis, axis)  # (G^2, 2), cell centres
    density = torch.cat([torch.exp(-family.nll(chunk)) for chunk in grid.split(50_000)])
    assert (density.sum() * step**2).item() == pytest.approx(1.0, abs=0.03)


# ---- the family contract on toy and image data ---------------------------------------------------------


def _check_step(family: Any, batch: torch.Tensor) -> None:
    before = [p.detach().clone() for p in family.net.parameters()]
    out = family.train_step(batch)
    assert {"train.loss", "train.grad_norm"} <= set(out)
    for key, value in out.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), key
    assert any(not torch.equal(b, p) for b, p in zip(before, family.net.parameters()))


def test_vectors_contract(grid25: Dataset) -> None:
    torch.manual_seed(0)
    family = build(grid25)
    _check_step(family, grid25.train[:64])
    nll = family.nll(grid25.test[:100])
    assert nll.shape == (100,) and torch.isfinite(nll).all()
    samples = family.sample(50)
    assert samples.shape == (50, 2) and torch.isfinite(samples).all()
    assert family.nll_method == "exact" and set(family.modules()) == {"made"}


@pytest.mark.parametrize("head", ["categorical", "logistic"])
def test_images_contract(digits: Dataset, head: str) -> None:
    torch.manual_seed(0)
    family = build(digits, **{"autoregressive.pixel_head": head})
    _check_step(family, digits.train[:32])
    nll = family.nll(digits.test[:50])
    assert nll.shape == (50,) and torch.isfinite(nll).all()
    assert torch.all(nll < digits.dim * math.log(17) * 2)  # near-uniform at the start, never absurd
    samples = family.sample(6)
    assert samples.shape == (6, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    levels = samples * 16
    assert torch.equal(levels, levels.round()), "samples must lie on the 17 levels"


class CallCounter:
    def __init__(self, module: nn.Module) -> None:
        self.calls = 0
        module.register_forward_hook(self.count)

    def count(self, *_: Any) -> None:
        self.calls += 1


@pytest.mark.parametrize("name", ["grid25", "digits", "stacked_digits"])
def test_sample_nfe_is_the_number_of_network_calls(name: str) -> None:
    data = load_dataset(DataConfig(name=name, n_train=100, n_test=20))
    family = build(data)
    counter = CallCounter(family.net)
    family.sample(3)
    assert family.sample_nfe == counter.calls == data.dim


def test_config_errors_name_the_field() -> None:
    for key, value in (
        ("autoregressive.component", "cauchy"),
        ("autoregressive.kernel", 4),
        ("autoregressive.mixtures", 0),
        ("optim.beta2", 1.0),
        ("optim.grad_clip", -1.0),
    ):
        with pytest.raises(ConfigError) as err:
            from_flat({"family": "autoregressive", key: value})
        assert err.value.key == key


@pytest.mark.parametrize("name", ["grid25", "digits"])
def test_run_end_to_end(name: str) -> None:
    row = run(
        {**TINY, "data.name": name, "data.n_train": 500, "train.steps": 4, "eval.every": 4, "eval.n_samples": 100}
    )
    assert row["status"] == "completed", row.get("error")
    assert math.isfinite(row["likelihood.nll"]) and row["likelihood.method"] == "exact"
    assert row["cost.sample_nfe"] == (2.0 if name == "grid25" else 64.0)
    assert ("likelihood.bpd" in row) == (name == "digits")
