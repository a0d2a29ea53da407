"""Dashboard figures on generated results: traces, axes and labels; the site opens offline with plotly.js once."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genbench.dashboards import figures
from genbench.dashboards.site import write_dashboards
from genbench.results import ResultsStore


@pytest.fixture
def results() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n = 12
    trials = pd.DataFrame(
        {
            "trial_id": [f"t{i:02d}" for i in range(n)],
            "family": "gan",
            "status": ["diverged" if i % 4 == 0 else "completed" for i in range(n)],
            "config.gan.loss": ["hinge", "wasserstein", "non_saturating"] * 4,
            "config.gan.penalty": ["none", "r1"] * 6,
            "config.gan.spectral_norm": [True, False, False] * 4,
            "config.optim.lr_g": 10 ** rng.uniform(-5, -2, n),
            "config.optim.lr_d": 10 ** rng.uniform(-5, -2, n),
            "quality.modes": rng.integers(0, 26, n).astype(float),
            "cost.wall_s": rng.uniform(1, 5, n),
            "error": "",
        }
    )
    history = pd.DataFrame(
        [
            {
                "trial_id": t,
                "step": s,
                "train.loss_d": rng.normal(),
                "train.grad_norm_d": rng.uniform(0.1, 10),
                "eval.modes": float(s // 10) if s % 20 == 0 else np.nan,
            }
            for t in trials["trial_id"]
            for s in range(10, 101, 10)
        ]
    )
    return trials, history


def test_outcome_vs_lr_marks_diverged_trials_on_log_axes(results: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    trials, _ = results
    fig = figures.outcome_vs_lr(trials, "quality.modes")
    names = {t.name for t in fig.data}
    assert names == {"completed (9)", "diverged (3)"}
    diverged = next(t for t in fig.data if t.name.startswith("diverged"))
    assert diverged.marker.symbol == "x" and len(diverged.x) == 3
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "lr_g" in fig.layout.xaxis.title.text and "lr_d" in fig.layout.yaxis.title.text


def test_quality_by_variant_has_one_box_per_variant_with_counts(results: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    trials, _ = results
    fig = figures.quality_by_variant(trials, "quality.modes")
    variants = figures.variant_labels(trials)
    assert len(fig.data) == variants.nunique()
    assert sum(len(t.x) for t in fig.data) == len(trials)
    assert all(re.search(r"\(n=\d+, \d+ diverged\)", t.name) for t in fig.data)
    assert "higher is better" in fig.layout.xaxis.title.text


def _lines(trace: object) -> list[list[float]]:
    """The lines a joined trace holds (separated by None)."""
    lines: list[list[float]] = [[]]
    for x in trace.x:  # type: ignore[attr-defined]
        if x is None:
            lines.append([])
        else:
            lines[-1].append(x)
    return [line for line in lines if line]


def test_training_curves_one_line_per_trial_skipping_unevaluated_steps(
    results: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    trials, history = results
    fig = figures.training_curves(history, trials, "eval.modes", "eval", "modes")
    lines = [line for t in fig.data for line in _lines(t)]
    assert len(lines) == len(trials)
    assert all(line == [20, 40, 60, 80, 100] for line in lines)
    dashed = [line for t in fig.data if t.line.dash == "dash" for line in _lines(t)]
    assert len(dashed) == 3  # the diverged trials
    assert all(t.name.endswith(f"({len(_lines(t))})") for t in fig.data)
    assert fig.layout.xaxis.title.text == "step (training steps)"


def test_trials_table_sorted_best_first(results: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    trials, _ = results
    fig = figures.trials_table(trials, "quality.modes", "max", ["config.gan.loss"])
    values = [float(v) for v in fig.data[0].cells.values[2]]
    assert values == sorted(values, reverse=True)


def test_site_is_offline_with_plotly_js_once(tmp_path: Path, results: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    trials, history = results
    store = ResultsStore(str(tmp_path))
    store.write_study(
        {
            "study": "demo",
            "family": "gan",
            "objectives": [{"metric": "quality.modes", "mode": "max"}],
            "space": {"gan.loss": {}, "optim.lr_g": {}},
        }
    )
    for row in trials.to_dict("records"):
        store.write_trial(
            row["trial_id"],
            row,
            history[history["trial_id"] == row["trial_id"]].drop(columns="trial_id").to_dict("records"),
        )
    index = Path(write_dashboards(str(tmp_path)))
    pages = sorted(p.name for p in index.parent.glob("*.html"))
    assert pages == ["cost.html", "index.html", "metrics.html", "quality.html", "stability.html"]
    for page in pages:
        text = (index.parent / page).read_text()
        assert text.count('<script src="plotly.min.js"></script>') == 1
        assert "cdn" not in text.lower() and "https://" not in text.split("<body>")[0]
        assert "version.txt" not in text  # the live reload is only for a served site
    stability = (index.parent / "stability.html").read_text()
    # rates, outcome, by variant, eval bands, loss_d, grad_norm_d, parallel, table; left out without a word: train.loss
    # and oscillation (no run measures them); a note: importances (no summary.yaml yet)
    assert stability.count('class="plotly-graph-div"') == 8
    assert stability.count('class="missing"') == 1 and "train.loss:" not in stability and "Oscillation" not in stability
    assert (index.parent / "plotly.min.js").stat().st_size > 1_000_000
    assert "best" in index.read_text() and "12: 9 completed, 3 diverged" in index.read_text()


def test_budget_curve_figure_one_line_per_variant_and_every_trial(results: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from genbench.results.analysis import budget_curve

    trials, _ = results
    curve = budget_curve(trials.assign(config_id=trials["trial_id"]), "quality.modes", "max", "config.gan.loss")
    fig = figures.budget_curve(curve)
    names = [t.name for t in fig.data]
    assert names[0] == "every trial" and sorted(names[1:]) == sorted(trials["config.gan.loss"].unique())
    every = fig.data[0]
    assert list(every.x) == list(range(1, len(trials) + 1))
    assert every.y[-1] == trials["quality.modes"].max() and list(every.y) == sorted(every.y)  # more trials never hurt


def test_metrics_page_defines_every_metric_and_mixed_provenance_is_flagged(
    tmp_path: Path, results: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from genbench.metrics.names import METRICS

    trials, _ = results
    trials = trials.assign(**{"provenance.extractor": "digits-cnn v1", "provenance.n_generated": 2500})
    store = ResultsStore(str(tmp_path))
    store.write_study({"study": "demo", "family": "gan", "objectives": [{"metric": "quality.modes", "mode": "max"}]})
    rows = trials.to_dict("records")
    for row in rows:
        store.write_trial(row["trial_id"], row, [])
    site = Path(write_dashboards(str(tmp_path))).parent
    metrics = (site / "metrics.html").read_text()
    listed = {name for name in METRICS if f"<code>{name}</code>" in metrics}
    assert listed == {"quality.modes", "cost.wall_s"} and "digits-cnn v1" in metrics  # what the rows measured
    assert "computed 2 ways" not in (site / "quality.html").read_text()
    failed = {k: v for k, v in rows[1].items() if not k.startswith(("provenance.", "quality."))}
    store.write_trial(rows[1]["trial_id"], {**failed, "status": "failed"}, [])  # it scored nothing: not a way
    site = Path(write_dashboards(str(tmp_path))).parent
    assert "computed 2 ways" not in (site / "quality.html").read_text()
    store.write_trial(rows[0]["trial_id"], {**rows[0], "provenance.n_generated": 500}, [])  # one run, fewer samples
    site = Path(write_dashboards(str(tmp_path))).parent
    for page in ("index.html", "stability.html", "quality.html", "cost.html"):
        assert "computed 2 ways" in (site / page).read_text() and 'href="metrics.html"' in (site / page).read_text()
