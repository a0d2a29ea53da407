"""The study engine's outcome: what dry-run, sweep and a cluster job print at the end, and their exit codes."""

from __future__ import annotations

import os

import pytest

from genbench.sweep.engine import StudyOutcome, show

BEST = {"family": "gan", "config_id": "t1", "quality.modes": 20.0, "searched": {"gan.loss": "hinge"}}
SUMMARY = {
    "configurations": 3,
    "runs": 3,
    "seeds": 1,
    "status": {"completed": 2, "early_stopped": 1},
    "objectives": [{"metric": "quality.modes", "mode": "max"}],
    "best": BEST,
    "pareto_front": [],
    "importances": {},
    "early_stopping": {"runs_stopped": 0},
    "warnings": [],
}


def outcome(**changes: object) -> StudyOutcome:
    fields = {
        "study": "s",
        "command": "dry-run",
        "space": "s.yaml",
        "out": "results/s-dry-run",
        "trials": 3,
        "counts": {"completed": 2, "early_stopped": 1},
        "wall_s": 65.0,
        "summary": SUMMARY,
        "dashboards": "results/s-dry-run/dashboards/index.html",
        **changes,
    }
    return StudyOutcome(**fields)  # type: ignore[arg-type]


def test_a_finished_study_prints_its_outcome_then_where_results_and_dashboards_are(
    capsys: pytest.CaptureFixture,
) -> None:
    done = outcome()
    assert show(done) == 0 and done.best == BEST and done.pareto_front == []
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "Done: 3 trials (2 completed, 1 early_stopped) in 0:01:05; best quality.modes = 20 (trial t1)"
    assert lines[1] == "Best configuration: gan (trial t1): quality.modes 20"
    assert (
        lines[-2] == f"Results:   {os.path.abspath('results/s-dry-run')}/  (trials/ and history/ Parquet, "
        "study.yaml, summary.yaml)"
    )
    assert lines[-1] == "Dashboard: results/s-dry-run/dashboards/index.html" and err == ""
    assert outcome(out="s3://b/s").lines()[-2].startswith("Results:   s3://b/s/")  # a URI is shown as given


def test_an_interrupted_study_says_how_to_resume_and_exits_130(capsys: pytest.CaptureFixture) -> None:
    stopped = outcome(counts={"completed": 1}, summary={}, dashboards="", interrupted=True, command="sweep")
    assert show(stopped) == 130 and stopped.best is None
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == (
        "Interrupted: 1 of 3 trials finished and are kept in results/s-dry-run; "
        "`genbench sweep s.yaml --out results/s-dry-run --resume` completes the study"
    )


def test_a_study_whose_every_trial_failed_prints_its_outcome_and_exits_1(capsys: pytest.CaptureFixture) -> None:
    failed = outcome(counts={"failed": 3}, summary={**SUMMARY, "status": {"failed": 3}, "best": None})
    assert show(failed) == 1
    out, err = capsys.readouterr()
    assert out.startswith("Done: 3 trials (3 failed) in 0:01:05\n") and "Dashboard: " in out
    assert (
        err.strip() == "genbench: every trial failed; their errors are in the `error` column of "
        "results/s-dry-run/trials"
    )
    assert outcome(counts={"failed": 1, "completed": 2}).exit_code == 0
