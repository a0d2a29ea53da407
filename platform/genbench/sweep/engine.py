"""The study engine: a study file run at its budget into a results directory and its dashboards; returns the outcome."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genbench.config import parse_set
from genbench.errors import ConfigError, GenbenchError

if TYPE_CHECKING:
    from genbench.cluster.profiles import Profile
    from genbench.sweep.spec import Budget, Study

INTERRUPTED_EXIT = 130  # a study that Ctrl-C or SIGTERM ended: the shell's code for SIGINT
FAILED_EXIT = 1  # every trial failed


@dataclass(frozen=True)
class StudyOutcome:
    """What a run of a study did: where its results and dashboards are, its configurations by status, the winners."""

    study: str  # the study's name
    command: str  # 'dry-run' or 'sweep': the budget it ran at
    space: str  # the study file it was run from ('study dict': a study given to the Python API as a mapping)
    out: str  # the results location as given: a path or a URI
    trials: int  # configurations the budget asks for
    counts: dict[str, int]  # configurations by status (completed, early_stopped, diverged, failed), resumed included
    wall_s: float  # the trials' wall time on this run (a resumed study: since the resume)
    summary: dict[str, Any] = field(default_factory=dict)  # summary.yaml; {} when interrupted
    dashboards: str = ""  # the dashboards' index.html; '' when interrupted (none were written)
    interrupted: bool = False  # Ctrl-C or SIGTERM ended it before the budget: the directory is left to --resume

    @property
    def best(self) -> dict[str, Any] | None:
        """The best configuration by the first objective (summary.yaml's entry), or None."""
        return self.summary.get("best")

    @property
    def pareto_front(self) -> list[dict[str, Any]]:
        """The configurations no other beats on every objective, best first ([] with one objective)."""
        return list(self.summary.get("pareto_front") or [])

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return INTERRUPTED_EXIT
        return FAILED_EXIT if self.counts and set(self.counts) == {"failed"} else 0

    def lines(self) -> list[str]:
        """What a finished study prints: outcomes, winners, importances, savings, where the results are."""
        if self.interrupted:
            return []
        from genbench.sweep.progress import fmt_s
        from genbench.sweep.summary import describe

        return describe(self.summary, fmt_s(self.wall_s)) + results_lines(self.out, self.dashboards)

    def problem(self) -> str:
        """The line for stderr when the study did not finish well ('' when it did)."""
        if self.interrupted:
            return (
                f"Interrupted: {sum(self.counts.values())} of {self.trials} trials finished and are kept in "
                f"{self.out}; `genbench {self.command} {self.space} --out {self.out} --resume` completes the study"
            )
        if self.exit_code == FAILED_EXIT:
            return f"genbench: every trial failed; their errors are in the `error` column of {self.out}/trials"
        return ""


def show(outcome: StudyOutcome) -> int:
    """Print how a study ended, as `genbench dry-run` / `sweep` and a cluster job end: its lines on stdout, a problem
    on stderr; returns the command's exit code."""
    if outcome.lines():
        print("\n".join(outcome.lines()), flush=True)
    if outcome.problem():
        print(outcome.problem(), file=sys.stderr, flush=True)
    return outcome.exit_code


def results_lines(out: str, dashboards: str) -> list[str]:
    """Where a study's or a run's results and dashboards are (an absolute path, or the URI)."""
    shown = out if "://" in out else os.path.abspath(out)
    return [
        f"Results:   {shown}/  (trials/ and history/ Parquet, study.yaml, summary.yaml)",
        f"Dashboard: {dashboards}",
    ]


def prepare_out(out: str) -> str:
    """A results directory ready for a new run; earlier results there (rows, or a study record or journal of a run
    that wrote no row yet) are moved aside, never overwritten or joined. A live driver's directory is refused."""
    from genbench.results.lock import check_free
    from genbench.results.store import ResultsStore

    store = ResultsStore(out)
    check_free(store, "a new run there")
    if not store.trial_ids() and not any(store.exists(name) for name in ("study.yaml", "optuna.journal")):
        return out
    if "://" in out:
        raise GenbenchError(f"{out} already holds results; give another --out")
    aside = f"{out.rstrip('/')}.{time.strftime('%Y%m%d-%H%M%S')}"
    os.rename(out, aside)
    print(f"Earlier results in {out} were moved to {aside}")
    return out


def run_study(
    space: str | Study,
    dry_run: bool,
    out: str | None,
    overrides: list[str] | dict[str, Any],
    resume: bool = False,
    address: str | None = None,
    max_failures: int | None = None,
    cluster: str | None = None,
    profile: Profile | None = None,
) -> StudyOutcome:
    """dry-run / sweep: the study at its budget on a private local Ray or the cluster at `address`, then its
    dashboards. A cluster file (`cluster`, or a job's `profile`) fills in the trial resources the study leaves out,
    names the default results location, states how far the cluster grows and prices the rows. Progress is printed
    as it goes; the outcome's lines() are what it ends with.

    `space`: a study file or a shipped study's name, or a Study already loaded (the Python API's study from a dict);
    `overrides`: the `--set` pairs ('key=value'), or their parsed mapping."""
    from genbench.dashboards.site import write_dashboards
    from genbench.results.lock import holding
    from genbench.shipped import resolve_study
    from genbench.sweep.spec import check_overrides, load_study, set_resources
    from genbench.sweep.tuner import run_sweep, study_data

    study = load_study(resolve_study(space)) if isinstance(space, str) else space
    profile = profile or _profile(cluster)
    _fill_resources(study, profile)
    _cluster_settings(study, address, max_failures)
    given = parse_set(overrides) if isinstance(overrides, list) else dict(overrides)
    run_keys = set_resources(study, given)  # --set resources.KEY=VALUE: the trials' resources
    budget = study.dry_run if dry_run else study.budget
    check_overrides(study, budget, run_keys)  # before --out is moved aside or written
    out = out or _default_out(study.name, dry_run, profile)
    data = study_data(study, budget, run_keys)  # a bad data set fails here, before anything moves or is written
    out = _resumable(out) if resume else prepare_out(out)
    label = f"{'dry-run' if dry_run else 'sweep'} {study.name}"
    with holding(out, "--resume" if resume else "this run") as note:  # one driver per results directory
        print(_start_line(label, study, budget, out) + (f"\nNote: {note}" if note else ""), flush=True)
        result = run_sweep(
            study, budget, out, label, run_keys, resume=resume, address=address, profile=profile, data=data
        )
    index = "" if result.interrupted else write_dashboards(out)
    return StudyOutcome(
        study.name,
        "dry-run" if dry_run else "sweep",
        study.source,
        out,
        budget.trials,
        result.counts,
        result.wall_s,
        result.summary,
        index,
        result.interrupted,
    )


def _start_line(label: str, study: Study, budget: Budget, out: str) -> str:
    seeds = f" x {budget.seeds} seeds" if budget.seeds > 1 else ""
    workers = f", {study.workers} workers each" if study.distributed else ""
    return f"{label}: {budget.trials} trials{seeds} x {budget.describe()} of family '{study.family}'{workers} -> {out}"


def _default_out(name: str, dry_run: bool, profile: Profile | None) -> str:
    """The cluster profile's storage for the study, else results/<study>[-dry-run] here."""
    if profile is not None and profile.storage:
        return profile.results_uri(name, dry_run)
    return os.path.join("results", f"{name}-dry-run" if dry_run else name)


def _resumable(out: str) -> str:
    from genbench.results.store import ResultsStore

    if not ResultsStore(out).exists("study.yaml"):
        raise GenbenchError(f"{out}: nothing to resume (no study was started there); run without --resume")
    return out


def _profile(cluster: str | None) -> Profile | None:
    """The genbench profile of a cluster file (--cluster), or None."""
    if not cluster:
        return None
    from genbench.cluster.profiles import load_profile

    return load_profile(cluster)


def _fill_resources(study: Study, profile: Profile | None) -> None:
    """The trial resources the study leaves out, from the cluster profile; says which it took."""
    from genbench.sweep.spec import fill_resources

    if profile is not None and (filled := fill_resources(study, profile.trial_resources, profile.source)):
        print(f"Trial resources from {profile.name}: " + ", ".join(f"{k} {profile.trial_resources[k]}" for k in filled))


def _cluster_settings(study: Study, address: str | None, max_failures: int | None) -> None:
    """--address is checked before anything is written; --max-failures replaces the study's."""
    from genbench.sweep.connect import check_address

    if address:
        check_address(address)
    if max_failures is not None:
        if max_failures < 0:
            raise ConfigError(
                f"expected an integer >= 0, got {max_failures}",
                key="--max-failures",
                fix="e.g. --max-failures 2 (0: a trial whose process dies is recorded as failed)",
            )
        study.max_failures = max_failures
