"""Divergence is an outcome in every family: NaN weights, a huge learning rate or overflowing samples end `diverged`."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch

from genbench.families import FAMILIES
from genbench.families.base import draw_categorical
from genbench.train.evaluate import Scores
from genbench.train.run import run

DATA = {
    "grid25": {"data.n_train": 500, "data.n_test": 200},  # vectors: the MADE's mixture weights, VAE Gaussian
    "digits": {"data.n_train": 300, "data.n_test": 100},
}  # levels: PixelCNN and VAE categorical heads
CASES = [(family, data) for family in FAMILIES.names() for data in DATA]
DRAWING_HEADS = [
    {"vae.sample_mode": "sample"},  # the VAE's categorical head draws levels (its default takes the mean)
    {"vae.likelihood": "bernoulli", "vae.sample_mode": "sample"},
    {"autoregressive.pixel_head": "logistic"},
]
EVAL_AT = 4  # the run's first evaluation step
History = list[tuple[int, dict[str, float]]]


def _flat(family: str, data: str, **overrides: Any) -> dict[str, Any]:
    return {
        "family": family,
        "data.name": data,
        **DATA[data],
        **FAMILIES.get(family).debug,
        "train.steps": 8,
        "train.batch_size": 32,
        "train.log_every": 2,
        "eval.every": EVAL_AT,
        "eval.n_samples": 32,
        "eval.features": "pixels",
        **overrides,
    }  # pixels: no digit classifier to train for these tests


def _after_step(monkeypatch: pytest.MonkeyPatch, family: str, at: int, change: Callable[[torch.Tensor], Any]) -> None:
    """Apply `change` to every parameter of the family right after its `at`-th training step."""
    cls = FAMILIES.get(family).build
    original, calls = cls.train_step, [0]

    def train_step(self: Any, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        out = original(self, batch)
        calls[0] += 1
        if calls[0] == at:
            with torch.no_grad():
                for module in self.modules().values():
                    for p in module.parameters():
                        change(p)
        return out

    monkeypatch.setattr(cls, "train_step", train_step)


def _run(flat: dict[str, Any]) -> tuple[dict[str, Any], History]:
    history: History = []
    row = run(flat, lambda step, values: history.append((step, dict(values))))
    return row, history


def _assert_diverged(row: dict[str, Any], history: History) -> None:
    """A diverged row: no exception recorded, the step it diverged at, finite bookkeeping."""
    assert row["status"] == "diverged", (row["status"], row["error"], row.get("traceback", ""))
    assert "traceback" not in row and row["stability.diverged"] is True and row["error"]
    assert 1 <= row["stability.steps_to_diverge"] <= row["steps"] and history[-1][0] == row["steps"]
    assert math.isfinite(row["cost.wall_s"]) and math.isfinite(row["cost.sample_per_s"]) and row["cost.params"] > 0


@pytest.mark.parametrize("family,data", CASES)
def test_a_huge_learning_rate_ends_diverged(family: str, data: str) -> None:
    """As measured: `train autoregressive --data digits --set optim.lr=1000` ended `failed` (Categorical on NaN)."""
    lr = {"optim.lr_g": 1e6, "optim.lr_d": 1e6} if family == "gan" else {"optim.lr": 1e6}
    row, history = _run(_flat(family, data, **lr))
    _assert_diverged(row, history)


@pytest.mark.parametrize("family,data", CASES)
def test_a_nan_weight_mid_run_ends_diverged_with_a_nan_likelihood(
    family: str, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _after_step(monkeypatch, family, 3, lambda p: p.fill_(math.nan))
    row, history = _run(_flat(family, data))
    _assert_diverged(row, history)
    assert row["error"] == "non-finite loss or gradient" and row["stability.steps_to_diverge"] == 4  # step 4's loss
    if "likelihood.nll" in row:  # the family has a likelihood: NaN is its honest value, not an exception
        assert math.isnan(row["likelihood.nll"])


@pytest.mark.parametrize("head", DRAWING_HEADS, ids=lambda head: ",".join(map(str, head.values())))
def test_heads_that_draw_from_nan_weights_end_diverged(head: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    family = next(iter(head)).split(".")[0]
    _after_step(monkeypatch, family, EVAL_AT, lambda p: p.fill_(math.nan))
    row, history = _run(_flat(family, "digits", **head))
    _assert_diverged(row, history)
    assert row["error"] == "non-finite parameters" and math.isnan(row["likelihood.nll"])


@pytest.mark.parametrize("family,data", CASES)
def test_finite_weights_whose_samples_overflow_end_diverged_at_the_evaluation(
    family: str, data: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Weights grown 1e30-fold by the evaluation step's update: still finite, as was that step's loss, but the
    samples overflow; the evaluation ends the run there."""
    _after_step(monkeypatch, family, EVAL_AT, lambda p: p.mul_(1e30))
    row, history = _run(_flat(family, data))
    _assert_diverged(row, history)
    assert row["error"] == "non-finite samples (32 of 32)" and row["stability.steps_to_diverge"] == EVAL_AT
    assert row["steps"] == EVAL_AT and any(k.startswith("eval.") for k in history[-1][1])  # the evaluation reported


def test_draw_categorical_marks_rows_without_a_distribution() -> None:
    inf = math.inf
    logits = torch.tensor(
        [[0.0, 1.0, -inf], [math.nan, 0.0, 0.0], [inf, 0.0, 0.0], [-inf, -inf, -inf], [3e38, -3e38, 0.0]]
    )  # (5, 3)
    index, bad = draw_categorical(logits)
    assert bad.tolist() == [False, True, True, True, False]
    assert index[0] in (0, 1) and index[4] == 0 and index.dtype == torch.long
    torch.manual_seed(0)
    good = torch.randn(4, 6, 10)
    torch.manual_seed(1)
    expected = torch.distributions.Categorical(logits=good).sample()
    torch.manual_seed(1)
    assert torch.equal(draw_categorical(good)[0], expected)  # finite logits draw exactly what Categorical draws


def test_scores_keep_their_count_through_a_broadcast() -> None:
    """Ray Train broadcasts rank 0's evaluation by pickling it: the count must survive, the metrics stay plain."""
    scores = pickle.loads(pickle.dumps(Scores({"fd": math.nan, "kid": 1.0}, nonfinite=3, n=8)))
    assert (scores.nonfinite, scores.n) == (3, 8) and dict(scores) == {
        "fd": pytest.approx(math.nan, nan_ok=True),
        "kid": 1.0,
    }
