"""Flow family: invertibility, log-determinants against brute-force Jacobians, ActNorm init, likelihoods, training."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian

from genbench.config import from_flat
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.families.flow import Flow
from genbench.nets.coupling import ActNorm, InvConv1x1, MultiScaleFlow, vector_flow
from genbench.train.run import run

TINY: dict[str, Any] = {
    "family": "flow",
    "train.steps": 20,
    "train.batch_size": 64,
    "train.log_every": 5,
    "eval.every": 10,
    "eval.n_samples": 200,
    **FAMILIES.get("flow").debug,
}


@pytest.fixture
def make_flow(grid25: Dataset, digits: Dataset) -> Callable[..., Flow]:
    """make_flow(data_name, overrides) -> a tiny flow family built through the registry."""

    def build(name: str = "grid25", flat: dict[str, Any] | None = None, seed: int = 0) -> Flow:
        torch.manual_seed(seed)
        cfg = from_flat({**TINY, "data.name": name, **(flat or {})})
        return FAMILIES.get("flow").build(cfg, grid25 if name == "grid25" else digits)

    return build


def _perturb(module: nn.Module, scale: float = 0.1) -> None:
    """Move every parameter off its initial value: zero-initialised couplings are identities, too easy to test."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def _initialised(flow: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> nn.Module:
    """Run ActNorm's data-dependent init on x, perturb, and switch to eval mode in dtype."""
    flow.train()
    flow(x)
    _perturb(flow)
    return flow.to(dtype).eval()


def _logdet_brute_force(flow: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log|det d flow(x) / dx| of each example of x from its full Jacobian: (B,)."""
    dim = x[0].numel()

    def flat(v: torch.Tensor) -> torch.Tensor:
        return flow(v.unsqueeze(0))[0].reshape(dim)  # one example to its latent (D,)

    return torch.stack([torch.linalg.slogdet(jacobian(flat, xi, vectorize=True).reshape(dim, dim))[1] for xi in x])


def _step_ok(family: Flow, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    before = [p.detach().clone() for p in family.flow.parameters()]
    out = family.train_step(batch)
    assert {"train.loss", "train.grad_norm"} <= set(out)
    for key, value in out.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad, key
        assert torch.isfinite(value), key
    assert any(not torch.equal(b, p) for b, p in zip(before, family.flow.parameters()))
    return out


@pytest.mark.parametrize("name", ["grid25", "digits"])
def test_train_step_sample_and_nll(make_flow: Callable[..., Flow], grid25: Dataset, digits: Dataset, name: str) -> None:
    data = grid25 if name == "grid25" else digits
    family = make_flow(name)
    _step_ok(family, data.train[:64])
    samples = family.sample(9)
    assert samples.shape == (9, *data.shape) and torch.isfinite(samples).all()
    assert family.flow.training  # sampling restores train mode
    nll = family.nll(data.test[:32])
    assert nll.shape == (32,) and torch.isfinite(nll).all()
    assert family.sample_nfe == 1 and set(family.modules()) == {"flow"}


def test_image_samples_lie_on_the_data_levels(make_flow: Callable[..., Flow], digits: Dataset) -> None:
    family = make_flow("digits")
    _step_ok(family, digits.train[:64])
    samples = family.sample(50)
    assert samples.min() >= 0 and samples.max() <= 1
    levels = samples * (digits.levels - 1)
    assert torch.allclose(levels, levels.round(), atol=1e-5)


def test_image_nll_is_a_positive_discrete_bound(make_flow: Callable[..., Flow], digits: Dataset) -> None:
    """-log P(x) of a discrete value is >= 0, and the dequantisation bound is above it; bpd is per dimension."""
    family = make_flow("digits")
    _step_ok(family, digits.train[:64])
    nll = family.nll(digits.test[:64])
    assert (nll > 0).all()
    assert family.nll_method.startswith("bound: uniform dequantisation")
    assert make_flow("grid25").nll_method == "exact"


def test_continuous_images_get_an_exact_density() -> None:
    """Images without discrete levels are not dequantised: exact density, samples clamped to [0, 1]."""
    torch.manual_seed(6)
    images = torch.rand(128, 2, 4, 4)
    data = Dataset("continuous", images[:96], images[96:])
    family = Flow(from_flat({**TINY, "data.name": "digits"}), data)
    _step_ok(family, data.train[:64])
    nll = family.nll(data.test)
    assert family.nll_method == "exact" and torch.isfinite(nll).all()
    assert torch.equal(nll, family.nll(data.test))  # no dequantisation noise
    samples = family.sample(20)
    assert samples.shape == (20, 2, 4, 4) and samples.min() >= 0 and samples.max() <= 1


def test_vector_flow_inverts(grid25: Dataset) -> None:
    torch.manual_seed(0)
    flow = _initialised(vector_flow(2, 6, 16, 2, invconv=True), grid25.train[:256])
    x = grid25.test[:100].double()
    z, _ = flow(x)
    assert torch.allclose(flow.inverse(z), x, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(z, x, atol=1e-2)  # the perturbed flow is not the identity


@pytest.mark.parametrize(
    "shape, scales, invconv", [((1, 4, 4), 2, True), ((2, 4, 4), 2, True), ((2, 4, 4), 1, False), ((1, 8, 8), 3, True)]
)
def test_image_flow_inverts(shape: tuple[int, int, int], scales: int, invconv: bool) -> None:
    torch.manual_seed(1)
    flow = _initialised(MultiScaleFlow(shape, scales, 4, 8, 1, invconv), torch.randn(64, *shape))
    x = torch.randn(10, *shape, dtype=torch.float64)
    z, _ = flow(x)
    assert z.shape == (10, math.prod(shape))
    assert torch.allclose(flow.inverse(z), x, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["grid25", "digits"])
def test_trained_family_inverts_in_float32(
    make_flow: Callable[..., Flow], grid25: Dataset, digits: Dataset, name: str
) -> None:
    """The flow as trained (float32, ActNorm initialised, eval mode) maps the data's latents back to the data."""
    data = grid25 if name == "grid25" else digits
    family = make_flow(name)
    for _ in range(30):
        family.train_step(data.train[torch.randint(len(data.train), (64,))])
    family.flow.eval()
    v = data.test[:100] if name == "grid25" else family._preprocess(family._to_unit(data.test[:100]))[0]
    z, _ = family.flow(v)
    assert torch.allclose(family.flow.inverse(z), v, rtol=1e-4, atol=1e-4 * v.abs().max().item())


def test_vector_flow_logdet_matches_jacobian(grid25: Dataset) -> None:
    torch.manual_seed(2)
    flow = _initialised(vector_flow(2, 6, 16, 2, invconv=True), grid25.train[:256])
    x = grid25.test[:6].double()
    _, logdet = flow(x)
    assert torch.allclose(logdet, _logdet_brute_force(flow, x), atol=1e-4)
    assert logdet.abs().max() > 0.1  # not trivially zero


@pytest.mark.parametrize("shape, invconv", [((1, 4, 4), True), ((2, 4, 4), True), ((2, 4, 4), False)])
def test_image_flow_logdet_matches_jacobian(shape: tuple[int, int, int], invconv: bool) -> None:
    torch.manual_seed(3)
    flow = _initialised(MultiScaleFlow(shape, 2, 4, 8, 1, invconv), torch.randn(64, *shape))
    x = torch.randn(3, *shape, dtype=torch.float64)
    _, logdet = flow(x)
    assert torch.allclose(logdet, _logdet_brute_force(flow, x), atol=1e-4)


def test_family_log_density_includes_the_logit_jacobian(make_flow: Callable[..., Flow], digits: Dataset) -> None:
    """The whole map from dequantised pixels y to latents z: logit preprocessing plus the multi-scale flow."""
    family = make_flow("digits")
    family.train_step(digits.train[:64])
    _perturb(family.flow, 0.05)
    family.flow.double().eval()

    def to_latent(y: torch.Tensor) -> torch.Tensor:
        v, _ = family._preprocess(y.unsqueeze(0))
        return family.flow(v)[0][0]  # (D,)

    y = family._to_unit(digits.test[:2].double())
    v, pre_logdet = family._preprocess(y)
    _, flow_logdet = family.flow(v)
    brute = torch.stack([torch.linalg.slogdet(jacobian(to_latent, yi, vectorize=True).reshape(64, 64))[1] for yi in y])
    assert torch.allclose(pre_logdet + flow_logdet, brute, atol=1e-4)


def test_invconv_lu_weight_inverse_and_logdet() -> None:
    torch.manual_seed(4)
    conv = InvConv1x1(5).double()
    _perturb(conv, 0.2)
    w = conv.weight()
    assert torch.allclose(conv.inverse_weight() @ w, torch.eye(5, dtype=torch.float64), atol=1e-10)
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64)
    _, logdet = conv(x)
    assert torch.allclose(logdet, 9 * torch.linalg.slogdet(w)[1].expand(2), atol=1e-10)


@pytest.mark.parametrize("shape", [(3,), (2, 4, 4)])
def test_actnorm_first_batch_is_standardised(shape: tuple[int, ...]) -> None:
    torch.manual_seed(5)
    x = 3.0 + 2.5 * torch.randn(128, *shape)
    norm = ActNorm(shape[0])
    y, _ = norm(x)
    dims = [0, *range(2, x.dim())]
    assert torch.allclose(y.mean(dim=dims), torch.zeros(shape[0]), atol=1e-4)
    assert torch.allclose(y.std(dim=dims, unbiased=False), torch.ones(shape[0]), atol=1e-4)
    y2, _ = norm(x + 10)  # the init happens once: a later batch is not re-standardised
    assert y2.mean() > 1.0


def test_actnorm_loaded_state_is_not_reinitialised() -> None:
    trained = ActNorm(2)
    trained(torch.randn(64, 2) * 4)
    fresh = ActNorm(2)
    fresh.load_state_dict(trained.state_dict())
    x = torch.randn(64, 2) + 5
    assert torch.allclose(fresh(x)[0], trained(x)[0])


def test_trained_flow_pickles(make_flow: Callable[..., Flow], grid25: Dataset) -> None:
    """Ray ships objects by pickle: the copy scores data as the original and keeps ActNorm initialised."""
    family = make_flow("grid25")
    _step_ok(family, grid25.train[:64])
    copy = pickle.loads(pickle.dumps(family.flow))
    x = grid25.test[:16]
    assert torch.allclose(copy(x)[1], family.flow(x)[1]) and copy.layers[0].ready


def test_actnorm_does_not_initialise_in_eval_mode() -> None:
    norm = ActNorm(2).eval()
    x = torch.randn(8, 2) * 3
    assert torch.equal(norm(x)[0], x) and not norm.ready


def test_toy_density_integrates_to_one(make_flow: Callable[..., Flow], grid25: Dataset) -> None:
    family = make_flow("grid25")
    for _ in range(150):
        family.train_step(grid25.train[torch.randint(len(grid25.train), (64,))])
    spacing = 0.03
    axis = torch.arange(-14.0, 14.0, spacing) + spacing / 2  # cell centres; the data lie within [-4.3, 4.3]
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    grid = torch.stack([xs.flatten(), ys.flatten()], dim=1)
    density = torch.cat([(-family.nll(chunk)).exp() for chunk in grid.split(100_000)])
    assert density.sum().item() * spacing**2 == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize("name", ["grid25", "digits"])
def test_training_loss_goes_down(make_flow: Callable[..., Flow], grid25: Dataset, digits: Dataset, name: str) -> None:
    data = grid25 if name == "grid25" else digits
    family = make_flow(name, {"train.steps": 120, "optim.warmup_steps": 10})
    losses = [
        family.train_step(data.train[torch.randint(len(data.train), (64,))])["train.loss"].item() for _ in range(120)
    ]
    assert sum(losses[-15:]) / 15 < sum(losses[:15]) / 15 - 0.1


@pytest.mark.parametrize(
    "key, value",
    [
        ("flow.couplings", 1),
        ("flow.hidden", 0),
        ("flow.alpha", 0.5),
        ("optim.lr", 0.0),
        ("optim.beta2", 1.0),
        ("optim.grad_clip", -1.0),
        ("optim.warmup_steps", -1),
        ("optim.weight_decay", -0.1),
        ("flow.conv_hidden", 0),
        ("train.batch_size", 1),
    ],
)
def test_bad_values_name_their_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_flat({**TINY, "data.name": "grid25", key: value})


def test_weight_decay_reaches_only_conditioner_weights(make_flow: Callable[..., Flow]) -> None:
    family = make_flow("digits", {"optim.weight_decay": 0.1})
    decayed, rest = family.opt.param_groups
    assert decayed["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    conditioner = {id(p) for m in family.flow.modules() if isinstance(m, nn.Conv2d) for p in [m.weight]}
    assert {id(p) for p in decayed["params"]} == conditioner


def test_scales_must_fit_the_image(digits: Dataset) -> None:
    cfg = from_flat({**TINY, "data.name": "digits", "flow.scales": 4})
    with pytest.raises(ConfigError, match=r"flow\.scales.*<= 3"):
        FAMILIES.get("flow").build(cfg, digits)


@pytest.mark.parametrize("name", ["grid25", "digits"])
def test_tiny_run_end_to_end(name: str) -> None:
    row = run({**TINY, "data.name": name, "data.n_train": 2000, "data.n_test": 200})
    assert row["status"] == "completed", row.get("error")
    assert math.isfinite(row["likelihood.nll"]) and row["cost.sample_nfe"] == 1.0
    if name == "digits":
        assert row["likelihood.bpd"] == pytest.approx(row["likelihood.nll"] / (64 * math.log(2)))
    else:
        assert row["likelihood.method"] == "exact" and "quality.modes" in row
