"""The single-run entry point and the loop: reports, reproducibility, divergence and failure as outcomes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from genbench.errors import ConfigError
from genbench.families.gan import GAN
from genbench.train.loop import close_window
from genbench.train.run import run

History = list[tuple[int, dict[str, float]]]
UNSTABLE = {"gan.loss": "wasserstein", "gan.clip": 1.0e6, "optim.lr_d": 10.0, "optim.lr_g": 10.0, "train.steps": 50}


def _run(flat: dict[str, Any]) -> tuple[dict[str, Any], History]:
    history: History = []
    row = run(flat, lambda step, values: history.append((step, dict(values))))
    return row, history


def test_completed_row(tiny_flat: dict[str, Any]) -> None:
    row, _ = _run(tiny_flat)
    assert row["status"] == "completed" and row["error"] == "" and row["steps"] == 20
    for key in ("quality.modes", "quality.hq_fraction", "quality.mode_kl"):
        assert isinstance(row[key], float)
    assert 0 <= row["quality.modes"] <= 25 and 0.0 <= row["quality.hq_fraction"] <= 1.0
    assert row["stability.diverged"] is False and row["stability.steps_to_diverge"] == -1
    assert math.isfinite(row["stability.grad_norm_max"]) and row["stability.grad_norm_max"] > 0
    assert math.isfinite(row["cost.wall_s"]) and row["cost.wall_s"] > 0 and row["cost.device_s"] >= 0
    assert row["cost.params"] > 0 and row["cost.sample_per_s"] > 0
    assert row["start_time"] <= row["end_time"]


def test_report_cadence(tiny_flat: dict[str, Any]) -> None:
    _, history = _run(tiny_flat)
    assert [step for step, _ in history] == [5, 10, 15, 20]
    for step, values in history:
        assert {"train.loss_d", "train.loss_g", "train.grad_norm_d", "train.grad_norm_g"} <= set(values)
        assert all(isinstance(v, float) for v in values.values())
        has_eval = {"eval.modes", "eval.hq_fraction", "eval.mode_kl"} <= set(values)
        assert has_eval == (step % 10 == 0), step
        assert not any(k.startswith("eval.") for k in values) or has_eval


def test_last_partial_window_is_reported(tiny_flat: dict[str, Any]) -> None:
    _, history = _run({**tiny_flat, "train.steps": 12})
    assert [step for step, _ in history] == [5, 10, 12]
    assert "eval.modes" in history[-1][1]  # the final step is always evaluated


def test_eval_every_not_a_multiple_of_log_every(tiny_flat: dict[str, Any]) -> None:
    _, history = _run({**tiny_flat, "train.steps": 12, "train.log_every": 4, "eval.every": 6})
    assert [step for step, values in history if "eval.modes" in values] == [6, 12]


def test_same_seed_same_history_other_seed_differs(tiny_flat: dict[str, Any]) -> None:
    row_a, a = _run({**tiny_flat, "seed": 3})
    row_b, b = _run({**tiny_flat, "seed": 3})
    np.testing.assert_equal(a, b)  # NaN-aware exact equality
    assert row_a["quality.hq_fraction"] == row_b["quality.hq_fraction"]
    _, c = _run({**tiny_flat, "seed": 4})
    assert [v["train.loss_d"] for _, v in c] != [v["train.loss_d"] for _, v in a]


def test_divergence_is_an_outcome(tiny_flat: dict[str, Any]) -> None:
    row, history = _run({**tiny_flat, **UNSTABLE})
    assert row["status"] == "diverged" and row["stability.diverged"] is True
    assert 1 <= row["stability.steps_to_diverge"] <= 50
    assert row["steps"] >= row["stability.steps_to_diverge"] and row["error"]
    assert history and history[-1][0] == row["steps"]  # the window that diverged is still reported
    assert math.isfinite(row["cost.wall_s"])


def test_failure_inside_training_is_an_outcome(tiny_flat: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self: GAN, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        raise RuntimeError("boom in train_step")

    monkeypatch.setattr(GAN, "train_step", boom)
    row, history = _run(tiny_flat)
    assert row["status"] == "failed" and "RuntimeError" in row["error"] and "boom in train_step" in row["error"]
    assert "boom" in row["traceback"] and history == [] and math.isfinite(row["cost.wall_s"])


def test_bad_config_raises_before_training(tiny_flat: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GAN, "__init__", lambda *a: pytest.fail("built a family for a bad config"))
    with pytest.raises(ConfigError, match="gan.los"):
        run({**tiny_flat, "gan.los": "hinge"})
    with pytest.raises(ConfigError, match="train.steps"):
        run({**tiny_flat, "train.steps": 0})


def test_unknown_dataset_raises_before_training(tiny_flat: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="data.name"):
        run({**tiny_flat, "data.name": "grid26"})


def test_batch_size_not_divisible_by_pack_is_a_config_error(tiny_flat: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="pack"):
        run({**tiny_flat, "train.batch_size": 63, "gan.pack": 2})


def _scalars(values: list[float]) -> list[dict[str, torch.Tensor]]:
    return [{"train.loss_d": torch.tensor(v), "train.grad_norm_d": torch.tensor(abs(v))} for v in values]


def test_close_window() -> None:
    ok = close_window(_scalars([1.0, 3.0]), 1e5, torch.tensor(True))
    assert ok.bad_offset is None and ok.means["train.loss_d"] == 2.0 and ok.grad_norm_max == 3.0
    nan = close_window(_scalars([1.0, 2.0, math.nan, math.inf]), 1e5, torch.tensor(True))
    assert nan.bad_offset == 2 and "non-finite" in nan.reason and nan.grad_norm_max > 1e38  # inf -> float max
    big = close_window(_scalars([1.0, -2e5]), 1e5, torch.tensor(True))
    assert big.bad_offset == 1 and "loss" in big.reason
    params = close_window(_scalars([1.0, 2.0]), 1e5, torch.tensor(False))
    assert params.bad_offset == 1 and "parameters" in params.reason


def test_train_flops_are_counted_and_scale_with_batch_and_steps(tiny_flat: dict[str, Any]) -> None:
    small = run({**tiny_flat, "train.batch_size": 32})
    large = run({**tiny_flat, "train.batch_size": 64})
    longer = run({**tiny_flat, "train.batch_size": 32, "train.steps": 40})
    assert small["cost.train_flops"] > 0
    assert large["cost.train_flops"] == pytest.approx(2 * small["cost.train_flops"], rel=1e-6)
    assert longer["cost.train_flops"] == pytest.approx(2 * small["cost.train_flops"], rel=1e-6)


def test_toy_rows_carry_swd_stability_values_and_provenance(tiny_flat: dict[str, Any]) -> None:
    row = run(tiny_flat)
    assert row["quality.swd"] >= 0 and row["cost.peak_mem_bytes"] > 0
    assert row["provenance.extractor"].startswith("none") and row["provenance.n_generated"] == 500
    assert row["stability.best_to_final_gap"] >= 0


def test_collapse_stops_the_run_and_says_why(tiny_flat: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import genbench.train.run as run_module

    monkeypatch.setattr(run_module.Evaluator, "__call__", lambda self, family: {"modes": 1.0})
    flat = {**tiny_flat, "train.steps": 100, "eval.every": 10, "train.collapse_evals": 3}
    row, history = _run(flat)
    assert row["status"] == "early_stopped" and row["steps"] == 30 and "mode collapse" in row["error"]
    assert history[-1][0] == 30
    assert _run({**flat, "train.collapse_evals": 0})[0]["status"] == "completed"
