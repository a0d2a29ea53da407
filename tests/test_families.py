"""One shared suite for every registered family, on toy and image data (the diffusers / optuna pattern)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from genbench.config import from_flat, to_flat
from genbench.data import load_dataset
from genbench.families import FAMILIES
from genbench.train.evaluate import likelihood

DATA = {
    "grid25": {"data.n_train": 1000, "data.n_test": 200},
    "digits": {},
    "stacked_digits": {"data.n_train": 300, "data.n_test": 100},
}
CASES = [(family, data) for family in FAMILIES.names() for data in DATA]


def _flat(family: str, data: str) -> dict[str, Any]:
    return {
        "family": family,
        "data.name": data,
        **DATA[data],
        **FAMILIES.get(family).debug,
        "train.batch_size": 32,
        "train.steps": 3,
        "eval.n_samples": 64,
    }


def _build(family: str, data: str) -> tuple[Any, Any]:
    cfg = from_flat(_flat(family, data))
    torch.manual_seed(0)
    dataset = load_dataset(cfg.data)
    return FAMILIES.get(family).build(cfg, dataset), dataset


def test_every_family_is_described_in_one_line() -> None:
    for name, doc in FAMILIES.describe().items():
        assert doc and "\n" not in doc, name
    assert {"gan"} <= set(FAMILIES.names())


@pytest.mark.parametrize("family", FAMILIES.names())
def test_config_round_trips_and_has_a_debug_size(family: str) -> None:
    spec = FAMILIES.get(family)
    assert spec.debug, f"{family}: FamilySpec.debug should give a debug-sized model for tests"
    cfg = from_flat({"family": family, **spec.debug})
    assert from_flat(to_flat(cfg)) == cfg
    assert all(k.startswith((f"{family}.", "optim.", "train.", "eval.", "data.")) for k in spec.defaults)


@pytest.mark.parametrize("family,data", CASES)
def test_steps_have_finite_losses_and_change_parameters(family: str, data: str) -> None:
    model, dataset = _build(family, data)
    before = [p.detach().clone() for m in model.modules().values() for p in m.parameters()]
    assert before, "a family has parameters"
    batch = dataset.train[: 32 * model.batches_per_step]
    for _ in range(2):
        out = model.train_step(batch)
    assert any(".loss" in k for k in out)
    for key, value in out.items():
        assert key.startswith("train.") and value.dim() == 0 and torch.isfinite(value), (key, value)
    after = [p.detach() for m in model.modules().values() for p in m.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("family,data", CASES)
def test_samples_have_the_data_shape_and_range(family: str, data: str) -> None:
    model, dataset = _build(family, data)
    model.train_step(dataset.train[: 32 * model.batches_per_step])
    samples = model.sample(8)
    assert tuple(samples.shape) == (8, *dataset.shape) and torch.isfinite(samples).all()
    if dataset.is_image:
        assert samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("family,data", CASES)
def test_likelihood_is_finite_and_labelled_where_there_is_one(family: str, data: str) -> None:
    model, dataset = _build(family, data)
    out = likelihood(model, dataset)
    if model.nll_method is None:
        assert out == {}
        return
    assert math.isfinite(out["likelihood.nll"]) and out["likelihood.method"]
    if dataset.is_image:
        assert math.isfinite(out["likelihood.bpd"]) and out["likelihood.bpd"] > 0


@pytest.mark.parametrize("family,data", CASES)
def test_every_run_row_carries_metrics_and_their_provenance(family: str, data: str) -> None:
    from genbench.train.run import run

    row = run({**_flat(family, data), "train.steps": 2, "eval.every": 2, "eval.n_samples": 100})
    assert row["status"] == "completed", row.get("error")
    expected = (
        {"quality.modes", "quality.swd"}
        if data == "grid25"
        else {"quality.fd", "quality.kid", "quality.precision", "quality.modes"}
    )
    assert expected <= set(row) and all(math.isfinite(row[k]) for k in expected)
    assert row["provenance.n_generated"] == 100 and row["provenance.reference"] == f"{data} test split"
    assert ("digits-cnn" in row["provenance.extractor"]) == (data != "grid25")
    assert row["cost.train_flops"] > 0 and row["cost.params"] > 0
