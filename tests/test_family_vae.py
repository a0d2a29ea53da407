"""VAE family: config validation, train_step contract, the IWAE bound against the ELBO, KL, decoders, sampling."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from genbench.config import DataConfig, from_flat, to_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.families.configs.vae import DEBUG
from genbench.families.vae import VAE, kl_standard_normal
from genbench.train.run import run

TINY: dict[str, Any] = {
    "family": "vae",
    "data.name": "grid25",
    "data.n_train": 2000,
    "data.n_test": 500,
    "train.steps": 20,
    "train.batch_size": 64,
    "train.log_every": 5,
    "eval.every": 10,
    "eval.n_samples": 500,
    **DEBUG,  # widths 16 (MLP) and 8 (conv), latent 4, IWAE k=8
}
REQUIRED = ("train.loss", "train.elbo", "train.kl", "train.recon", "train.grad_norm")
# (data, likelihood, decoder_var): every decoder likelihood on the data it applies to
CASES = [
    ("grid25", "gaussian", "learned"),
    ("grid25", "gaussian", "predicted"),
    ("digits", "categorical", "learned"),
    ("digits", "bernoulli", "learned"),
    ("digits", "gaussian", "learned"),
    ("digits", "gaussian", "predicted"),
]


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    return {name: load_dataset(DataConfig(name=name, n_train=2000, n_test=500)) for name in ("grid25", "digits")}


def make(datasets: dict[str, Dataset], data: str = "grid25", seed: int = 0, **flat: Any) -> VAE:
    torch.manual_seed(seed)
    cfg = from_flat({**TINY, "data.name": data, **{k.replace("__", "."): v for k, v in flat.items()}})
    return FAMILIES.get("vae").build(cfg, datasets[data])


def case(datasets: dict[str, Dataset], data: str, likelihood: str, var: str, **flat: Any) -> VAE:
    return make(datasets, data, vae__likelihood=likelihood, vae__decoder_var=var, **flat)


def neg_elbo_draws(vae: VAE, x: torch.Tensor, draws: int) -> torch.Tensor:
    """-ELBO of each example (analytic KL, one reparameterised sample each draw): (draws, B)."""
    with torch.no_grad():
        return torch.stack([sum(vae.elbo_terms(vae._target(x))) for _ in range(draws)])


def test_registered_with_default_budget() -> None:
    spec = FAMILIES.get("vae")
    assert {"train.steps", "train.batch_size", "eval.every"} <= set(spec.defaults)
    flat = to_flat(from_flat({"family": "vae"}))
    assert flat["vae.likelihood"] == "auto" and flat["vae.beta"] == 1.0 and flat["vae.iwae_k"] == 64
    assert flat["train.steps"] == spec.defaults["train.steps"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("vae.likelihood", "poisson"),
        ("vae.decoder_var", "fixed"),
        ("vae.sample_mode", "mode"),
        ("vae.beta", -1.0),
        ("vae.iwae_k", 0),
        ("vae.min_log_var", 5.0),
        ("vae.kl_warmup", 1.5),
        ("vae.activation", "tanh"),
        ("optim.lr", 0.0),
        ("optim.beta2", 1.0),
        ("optim.grad_clip", -1.0),
    ],
)
def test_bad_values_name_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"family": "vae", key: value})
    assert err.value.key == key


@pytest.mark.parametrize("likelihood", ["bernoulli", "categorical"])
def test_image_likelihood_on_vectors_is_a_config_error(datasets: dict[str, Dataset], likelihood: str) -> None:
    with pytest.raises(ConfigError) as err:
        make(datasets, "grid25", vae__likelihood=likelihood)
    assert err.value.key == "vae.likelihood"


def test_auto_likelihood_and_honest_methods(datasets: dict[str, Dataset]) -> None:
    assert make(datasets, "grid25").kind == "gaussian"
    assert make(datasets, "grid25").nll_method == "bound: IWAE k=8 (Gaussian decoder)"
    auto = make(datasets, "digits", vae__iwae_k=64)
    assert auto.kind == "categorical"
    assert auto.nll_method == "bound: IWAE k=64 (categorical decoder over 17 levels)"
    assert make(datasets, "digits", vae__likelihood="bernoulli").nll_method.startswith("not a likelihood")
    assert "dequantised" in make(datasets, "digits", vae__likelihood="gaussian").nll_method


@pytest.mark.parametrize("data, likelihood, var", CASES)
def test_train_step_contract(datasets: dict[str, Dataset], data: str, likelihood: str, var: str) -> None:
    vae = case(datasets, data, likelihood, var, vae__kl_warmup=0.0)
    before = [p.detach().clone() for p in vae.params]
    out = vae.train_step(datasets[data].train[:32])
    assert set(REQUIRED) <= set(out)
    for key, value in out.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), key
    assert torch.allclose(out["train.elbo"], -(out["train.recon"] + out["train.kl"]))
    assert torch.allclose(out["train.loss"], -out["train.elbo"])  # beta = 1, no warm-up
    assert out["train.kl"] >= 0
    assert any(not torch.equal(b, p) for b, p in zip(before, vae.params))


def test_beta_weights_the_kl_and_warmup_ramps(datasets: dict[str, Dataset]) -> None:
    vae = make(datasets, vae__beta=4.0, vae__kl_warmup=0.0)
    out = vae.train_step(datasets["grid25"].train[:32])
    assert torch.allclose(out["train.loss"], out["train.recon"] + 4.0 * out["train.kl"])
    ramp = make(datasets, vae__beta=2.0, vae__kl_warmup=0.5, train__steps=10)  # 5 warm-up steps
    weights = []
    for _ in range(7):
        weights.append(ramp.kl_weight())
        ramp.train_step(datasets["grid25"].train[:32])
    assert weights == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0, 2.0, 2.0])


def test_analytic_kl_matches_monte_carlo() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    log_var = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(200_000, 4, 3, generator=gen, dtype=torch.float64)
    z = mu + torch.exp(0.5 * log_var) * eps
    log_q = -0.5 * (eps**2 + log_var).sum(-1)  # the 2*pi terms cancel against the prior's
    log_p = -0.5 * (z**2).sum(-1)
    mc = (log_q - log_p).mean(0)  # (4,)
    se = (log_q - log_p).std(0) / math.sqrt(len(eps))
    analytic = kl_standard_normal(mu, log_var)
    assert ((analytic - mc).abs() < 5 * se).all(), (analytic, mc, se)
    assert kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)).abs().max() == 0


@pytest.mark.parametrize("data", ["grid25", "digits"])
def test_iwae_with_many_samples_is_tighter_than_the_elbo(datasets: dict[str, Dataset], data: str) -> None:
    vae = make(datasets, data, vae__kl_warmup=0.0)
    for _ in range(30):
        vae.train_step(datasets[data].train[torch.randint(len(datasets[data].train), (64,))])
    x = datasets[data].test[:100]
    torch.manual_seed(1)
    neg_elbo = neg_elbo_draws(vae, x, 50).mean()
    iwae = vae.iwae_nll(x, 256).mean()
    assert iwae < neg_elbo, (iwae, neg_elbo)


@pytest.mark.parametrize("data", ["grid25", "digits"])
def test_iwae_with_one_sample_is_the_elbo_in_expectation(datasets: dict[str, Dataset], data: str) -> None:
    vae = make(datasets, data)
    x = datasets[data].test[:20]
    torch.manual_seed(2)
    iwae1 = torch.stack([vae.iwae_nll(x, 1) for _ in range(400)]).mean(1)  # (draws,): batch means
    neg_elbo = neg_elbo_draws(vae, x, 400).mean(1)
    se = math.sqrt(iwae1.var().item() / len(iwae1) + neg_elbo.var().item() / len(neg_elbo))
    assert abs(iwae1.mean().item() - neg_elbo.mean().item()) < 4 * se, (iwae1.mean(), neg_elbo.mean(), se)


@pytest.mark.parametrize("data, likelihood, var", CASES)
def test_nll_is_finite_for_every_likelihood(datasets: dict[str, Dataset], data: str, likelihood: str, var: str) -> None:
    vae = case(datasets, data, likelihood, var, vae__iwae_k=64)
    vae.train_step(datasets[data].train[:64])
    x = datasets[data].test[:500]  # up to 500 x 64 draws: computed in several chunks
    nll = vae.nll(x)
    assert nll.shape == (len(x),) and torch.isfinite(nll).all()
    if data == "digits" and likelihood != "bernoulli":  # a bound on -log P(x) of discrete data is >= 0
        assert (nll >= 0).all()


def test_gaussian_log_variance_stays_in_range(datasets: dict[str, Dataset]) -> None:
    vae = make(datasets, vae__decoder_var="predicted", vae__min_log_var=-9.0, vae__max_log_var=4.0)
    params = torch.stack([torch.zeros(3, 2), torch.tensor([[-1e4] * 2, [0.0] * 2, [1e4] * 2])], dim=1)  # (3, 2, 2)
    _, log_var = vae.decoder.head.mean_log_var(params)
    assert log_var.min() >= -9.0 and log_var.max() <= 4.0
    assert torch.isfinite(vae.decoder.head.log_prob(params, torch.full((3, 2), 1e3))).all()


def test_categorical_probabilities_sum_to_one(datasets: dict[str, Dataset]) -> None:
    vae = make(datasets, "digits", vae__likelihood="categorical")
    params = vae.decoder(torch.randn(5, 4))  # (5, 17, 1, 8, 8)
    assert params.shape == (5, 17, 1, 8, 8)
    probs = vae.decoder.head.probs(params)
    assert torch.allclose(probs.sum(1), torch.ones(5, 1, 8, 8), atol=1e-6) and (probs >= 0).all()
    x = datasets["digits"].train[:5]
    manual = torch.log(probs.gather(1, torch.round(x * 16).long().unsqueeze(1))).flatten(1).sum(1)
    assert torch.allclose(vae.decoder.head.log_prob(params, x), manual, atol=1e-4)


@pytest.mark.parametrize("data, likelihood, var", CASES)
@pytest.mark.parametrize("mode", ["mean", "sample"])
def test_samples_have_the_data_shape(
    datasets: dict[str, Dataset], data: str, likelihood: str, var: str, mode: str
) -> None:
    vae = case(datasets, data, likelihood, var, vae__sample_mode=mode)
    out = vae.sample(7)
    assert out.shape == (7, *datasets[data].shape) and torch.isfinite(out).all()
    assert all(net.training for net in vae.modules().values())  # train mode restored
    if data == "digits":
        assert out.min() >= 0 and out.max() <= 1
        if mode == "sample" and likelihood != "bernoulli":  # draws land on the 17 levels
            assert torch.allclose(out * 16, torch.round(out * 16), atol=1e-4)


@pytest.mark.parametrize("data", ["grid25", "digits"])
def test_training_reduces_the_loss(datasets: dict[str, Dataset], data: str) -> None:
    vae = make(datasets, data, vae__kl_warmup=0.0, vae__width=32, vae__conv_width=16, optim__lr=3e-3)
    n = len(datasets[data].train)
    gen = torch.Generator().manual_seed(0)
    losses = [
        vae.train_step(datasets[data].train[torch.randint(n, (64,), generator=gen)])["train.loss"] for _ in range(150)
    ]
    assert torch.stack(losses[-30:]).mean() < torch.stack(losses[:30]).mean() - 0.5


@pytest.mark.parametrize("data", ["grid25", "digits"])
def test_end_to_end_run_reports_a_likelihood(data: str) -> None:
    row = run({**TINY, "data.name": data})
    assert row["status"] == "completed", row.get("error")
    assert math.isfinite(row["likelihood.nll"]) and row["likelihood.method"].startswith("bound: IWAE k=8")
    assert row["cost.sample_nfe"] == 1.0
    if data == "digits":
        assert row["likelihood.bpd"] == pytest.approx(row["likelihood.nll"] / (64 * math.log(2)))
