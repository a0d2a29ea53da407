"""Ray Tune + Optuna runner of a study on a private local Ray or a given cluster; a callback writes every trial."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from genbench.cluster.profiles import Profile
from genbench.config import from_flat
from genbench.errors import GenbenchError
from genbench.results.analysis import config_status
from genbench.results.store import ResultsStore
from genbench.sweep.connect import PRIVATE_RAY, connect_ray
from genbench.sweep.journal import Journal, fail_stale_trials, journal_storage, optuna_storage, repair_journal  # noqa: F401 (all but journal_storage: moved there, still importable here)
from genbench.sweep.progress import Progress
from genbench.sweep.records import study_record, trial_row
from genbench.sweep.resources import (
    REFRESH_S,
    Request,
    concurrency,
    plan_line,
    read_cluster,
    resolve_gpu_share,
    trial_request,
)
from genbench.sweep.spec import Budget, Study, grid_space
from genbench.sweep.summary import summarise

# Our own results are the record; Ray's per-trial CSV/JSON/TensorBoard loggers would only duplicate them.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@dataclass
class SweepSummary:
    study: str
    out: str
    counts: dict[str, int]
    best: tuple[float, str] | None
    wall_s: float
    summary: dict[str, Any]  # summary.yaml: best, Pareto front, importances, early-stopping savings
    interrupted: bool = False  # Ctrl-C or SIGTERM ended it before the budget: the directory is left to --resume


SEED_AGGREGATES = ("stability.seed_std", "stability.seed_cv", "stability.success_rate")


def seed_trial_id(config_id: str, seed: int, seeds: int) -> str:
    """A seed's row id: the configuration's id itself when a study trains one seed per configuration."""
    return config_id if seeds == 1 else f"{config_id}_s{seed}"


def _stopped_rows(
    history: list[dict[str, Any]], seeds: list[int], reason: str, partial: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Rows of the seeds of a trial stopped before its final report: each seed's row as of its last evaluation
    (cost, provenance, stability so far), its last step and its last evaluation's quality."""
    rows = []
    for seed in seeds:
        mine = [h for h in history if h.get("seed", seeds[0]) == seed]
        evals = {f"quality.{k[5:]}": v for h in mine for k, v in h.items() if k.startswith("eval.")}
        snapshot = next((r for r in partial if r.get("seed", seeds[0]) == seed), {})
        rows.append(
            {
                **snapshot,
                "seed": seed,
                "status": "early_stopped",
                "error": reason,
                "steps": max((h["step"] for h in mine), default=0),
                **evals,
            }
        )
    return rows


def trial_error(trial: Any) -> str:
    """The last line of a failed trial's error: Tune writes it beside the driver first, the storage copy can lag."""
    local = trial.error_file
    text = Path(local).read_text(errors="replace") if local and os.path.exists(local) else ""
    lines = [line for line in (text or str(trial.get_error() or "")).splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else "trial process failed (Ray recorded no error)"


class ResultsWriteError(GenbenchError):
    """The results location refused a write: the sweep ends with one line; what was written is kept."""


def make_writer(
    study: Study,
    store: ResultsStore,
    progress: Progress,
    seeds: int,
    price: Callable[[dict[str, Any]], dict[str, float]] | None = None,
    sync: Callable[[], None] = lambda: None,
) -> Any:
    """A Tune Callback that gathers each trial's history chunks and writes its rows when it ends, however it ends.

    `price(row)` adds cost.usd from the cluster profile; `sync()` runs once a configuration's rows are written
    (the journal's copy beside results on a URI)."""
    from ray.tune import Callback

    class ResultsWriter(Callback):
        def __init__(self) -> None:
            self.history: dict[str, list[dict[str, Any]]] = {}
            self.partial: dict[str, list[dict[str, Any]]] = {}  # each seed's row as of the trial's last report
            self.started: dict[str, float] = {}
            self.failed = ""  # why the results could not be written (a full disk, a storage error)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.started[trial.trial_id] = time.time()
            progress.trial_started(trial.trial_id)

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            self.history.setdefault(trial.trial_id, []).extend(result.get("history", []))
            if result.get("partial_rows"):
                self.partial[trial.trial_id] = result["partial_rows"]
            if not result.get("final"):
                run_s = max((r.get("cost.wall_s") or 0.0 for r in result.get("partial_rows") or []), default=0.0)
                progress.advanced(trial.trial_id, float(result.get(progress.time_attr) or 0), float(run_s))

        def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            # Its process or node died and Tune runs it again from the start: the curve starts over too.
            self.history.pop(trial.trial_id, None)
            self.partial.pop(trial.trial_id, None)
            progress.trial_started(trial.trial_id)
            print(
                f"[{progress.label}] trial {trial.trial_id} lost its process or node ({trial_error(trial)}); "
                f"running it again",
                file=progress.out,
                flush=True,
            )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            last = dict(trial.last_result or {})
            if last.get("final"):
                self._write(trial, last["rows"], last)
            else:  # stopped by the scheduler before its last report
                reason = f"stopped by the scheduler ({study.scheduler}) at step {last.get('step', 0)}"
                stopped = _stopped_rows(
                    self.history.get(trial.trial_id, []),
                    self._seeds(trial),
                    reason,
                    self.partial.pop(trial.trial_id, []),
                )
                self._write(trial, stopped, {})

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            message = trial_error(trial)
            self._write(trial, [{"seed": s, "status": "failed", "error": message} for s in self._seeds(trial)], {})

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            if self.failed:  # ends Tune's loop: an error here is not a trial's, so no trial is retried for it
                raise ResultsWriteError(self.failed)
            progress.show(running=sum(t.status == "RUNNING" for t in trials))

        def _seeds(self, trial: Any) -> list[int]:
            base = int(trial.config.get("seed", 0))
            return list(range(base, base + seeds))

        def _write(self, trial: Any, rows: list[dict[str, Any]], aggregate: dict[str, Any]) -> None:
            config_id = trial.trial_id
            shared = {k: aggregate[k] for k in SEED_AGGREGATES if k in aggregate}
            ids = {r["seed"]: seed_trial_id(config_id, r["seed"], seeds) for r in rows}
            written = [
                trial_row(
                    study,
                    ids[r["seed"]],
                    {**trial.config, "seed": r["seed"]},
                    {"start_time": self.started.get(config_id), **r, **shared, "config_id": config_id},
                )
                for r in rows
            ]
            for row in written:
                row.update(price(row) if price is not None else {})
            history = [
                {"trial_id": ids.get(h.get("seed"), config_id), **{k: v for k, v in h.items() if k != "seed"}}
                for h in self.history.pop(config_id, [])
            ]
            if self.failed:  # the storage failed already: the sweep is ending; write nothing more
                return
            try:
                store.write_config(config_id, written, history)
            except OSError as exc:  # raised at the next step, outside Tune's handling of this trial's result
                self.failed = (
                    f"{store.uri}: cannot write results ({exc.strerror or exc}); every trial written "
                    "before is kept: free space or fix the storage, then run again with --resume"
                )
                return
            sync()  # the journal of results at a URI: its copy there now holds this trial too
            progress.finished(config_id, config_status([r["status"] for r in written]), aggregate or written[0])

    return ResultsWriter()


def _sampler(study: Study) -> Any:
    import optuna

    seed = study.search_seed
    samplers = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False),
        "grid": lambda: optuna.samplers.GridSampler(grid_space(study.space), seed=seed),
        "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed, population_size=min(50, study.budget.trials)),
    }
    return samplers[study.algorithm]()


def _scheduler(study: Study, budget: Budget) -> Any:
    """ASHA on the study's objective, in the budget's unit (steps, device-seconds or FLOPs): every trial gets
    `grace_evals` evaluations before it may be stopped."""
    if study.scheduler != "asha":
        return None
    from ray.tune.schedulers import ASHAScheduler

    metric, mode = study.objectives[0]
    grace = min(budget.eval_interval * study.grace_evals, budget.per_run)
    return ASHAScheduler(
        time_attr=budget.time_attr,
        metric=metric,
        mode=mode,
        max_t=budget.per_run,  # type: ignore[arg-type]  # hinted int; Ray's rungs are arithmetic on floats
        grace_period=grace,  # type: ignore[arg-type]
        reduction_factor=3,
    )


def _progress_budget(budget: Budget, constants: dict[str, Any]) -> dict[str, Any]:
    """What Progress measures a trial's advance in: the budget's unit and one run's budget (a --set of it wins)."""
    key = {"steps": "train.steps", "device_s": "train.device_s", "flops": "train.flops"}[budget.unit]
    units = {"steps": "steps", "device_s": "device-s", "flops": "FLOPs"}
    return {
        "steps": float(constants.get(key, budget.per_run)),
        "unit": units[budget.unit],
        "time_attr": budget.time_attr,
    }


def recover(store: ResultsStore) -> set[str]:
    """Before a resume: set aside unreadable trials parts (their configurations run again), delete history
    parts without their trials part and temporary files; returns the ids of the configurations kept."""
    for path in store.unreadable("trials"):
        print(f"Resume: {path} is unreadable; moved to {store.set_aside(path)}, its configuration runs again")
    for path in store.orphan_history():
        store.fs.delete_file(path)
        print(f"Resume: removed {path} (its trial never finished writing; it runs again)")
    for rel in ("", "trials", "history", "samples"):  # half-written files of a killed driver, wherever it wrote
        for info in store.fs.get_file_info(pafs.FileSelector(store.path(rel), allow_not_found=True)):
            if info.base_name.startswith(".tmp-") and info.type == pafs.FileType.File:
                store.fs.delete_file(info.path)
    return store.trial_ids()


PATH_KEYS = ("data.path", "eval.inception_weights")  # files a trial opens: Tune runs trials in directories of its own


def absolute_paths(constants: dict[str, Any]) -> dict[str, Any]:
    """Relative paths in the run settings, made absolute against the directory the user ran genbench from."""
    out = dict(constants)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and "://" not in value and not os.path.isabs(value):
            out[key] = os.path.abspath(os.path.expanduser(value))
    return out


RESUME_KEYS = (
    "objectives",
    "success",
    "algorithm",
    "search_seed",
    "space",
    "fixed_by_family",
)  # what the finished trials were made by
BUDGET_RESUME_KEYS = ("steps", "device_s", "train_flops", "eval_every", "evals", "seeds")
NEWER_BUDGET_KEYS = {
    "device_s": 0.0,
    "train_flops": 0.0,
    "evals": 0,
}  # absent from study.yaml files written before  # a resume may ask for more or fewer trials, not other runs


def _check_resumable(store: ResultsStore, record: dict[str, Any]) -> None:
    """Refuse a resume whose study differs from the one the results were made with in anything that makes the
    finished trials incomparable to the new ones (run settings, space, objectives, search, steps, seeds)."""
    stored = store.read_study()
    for key, old, new in _study_changes(stored, record):
        raise GenbenchError(
            f"{store.path('study.yaml')}: {key}: these results were made with {old!r}, the study "
            f"now has {new!r}; resume with the same study file and --set values, or start a new "
            "sweep with another --out"
        )


def _study_changes(stored: dict[str, Any], record: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    old, new = stored.get("constants") or {}, record["constants"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            yield key, old.get(key), new.get(key)
    for key in RESUME_KEYS:
        if stored.get(key) != record.get(key):
            yield key, stored.get(key), record.get(key)
    for key in BUDGET_RESUME_KEYS:
        old = (stored.get("budget") or {}).get(
            key, NEWER_BUDGET_KEYS.get(key)
        )  # results from before the key: its default
        if old != record["budget"].get(key):
            yield f"budget.{key}", old, record["budget"].get(key)


@dataclass
class Plan:
    """Where and how a sweep's trials run: the cluster, each trial's request and how many run at once."""

    where: str  # 'a private local Ray', 'the Ray cluster at HOST:PORT', ...
    joined: bool  # an existing cluster (it may grow), not the private local Ray
    profile: Profile | None
    request: Request
    live: int  # trials running or waiting for resources at once, as the sweep starts
    data: Any = None  # the data set the driver loaded once for every trial (study_data), or None

    def record(self, study: Study) -> dict[str, Any]:
        """study.yaml's `resources`: what the trials asked for and how many ran at once at the start."""
        return {
            "cpus_per_trial": study.cpus_per_trial,
            "gpus_per_trial": study.gpus_per_trial,
            "workers": study.workers,
            "gpus_per_worker": study.gpus_per_worker,
            "placement": study.placement,
            "trial_request": self.request.describe(),
            "seeds_side_by_side": self.request.lanes,
            "concurrent_at_start": self.live,
            "max_concurrent": study.max_concurrent or None,
        }


def study_data(study: Study, budget: Budget, overrides: dict[str, Any]) -> Any:
    """The study's data set, loaded once here before anything is written: a wrong path, an empty folder, mixed
    image sizes or a bad file is one error now, not a failure in every trial; the trials then read one shared copy
    per node. None when the study searches a data.* key (each trial loads its own)."""
    from genbench.data import load_dataset

    if any(key.startswith("data.") for key in study.space):
        return None
    constants = absolute_paths({**study.run_settings(budget), **overrides})
    data = load_dataset(from_flat({"family": study.families[0], **constants}).data)
    print(
        f"Data: {data.name}, {len(data.train):,} training and {len(data.test):,} test examples of shape "
        f"{tuple(data.shape)}, loaded once for every trial",
        flush=True,
    )
    return data


def plan_trials(
    study: Study,
    budget: Budget,
    constants: dict[str, Any],
    trials: int,
    address: str | None,
    profile: Profile | None,
    data: Any = None,
) -> Plan:
    """Connect to Ray (a private local one, or the cluster at `address`) and decide each trial's request; prints
    the plan, and a warning where the trials at once may need more memory than the cluster has (for `data`, the
    study's data set). A study that cannot run there (train.device=cuda with no GPU) fails here, before anything
    is written."""
    where = connect_ray(address, dashboard=study.distributed)  # Ray Train's controller uses the state API
    joined = where != PRIVATE_RAY
    view = read_cluster(profile, joined)
    note = resolve_gpu_share(study, str(constants.get("train.device", "auto")), view)
    request = trial_request(study, budget.seeds, view)
    live = concurrency(request, view, study.max_concurrent, trials)
    print(plan_line(request, view, live, study.max_concurrent) + (f" ({note})" if note else ""), flush=True)
    from genbench.sweep.resources import memory_line

    processes = request.lanes * (study.workers if study.distributed else 1)
    warning = memory_line(study.families, data.shape if data is not None else None, processes, live, view)
    if warning:
        print(warning, flush=True)
    return Plan(where, joined, profile, request, live, data)


def run_sweep(
    study: Study,
    budget: Budget,
    out: str,
    label: str,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
    address: str | None = None,
    profile: Profile | None = None,
    data: Any = None,
) -> SweepSummary:
    """Run the study's configurations with Ray Tune + OptunaSearch until `out` holds `budget.trials` of them.

    With `resume`, configurations already in `out` are kept and counted, those a killed driver left unfinished
    are run again as new trials, and the searcher continues from the Optuna journal beside the results.
    `profile` (a cluster file's) fills in the trial resources the study leaves out, states how far the cluster
    grows and prices every row (cost.usd). `data` (study_data) is shared with every trial through Ray's object store.
    """
    import optuna
    import ray

    store = ResultsStore(out)
    constants = absolute_paths({**study.run_settings(budget), **(overrides or {})})
    from_flat(
        {**study.example_run(budget, study.families[0]), **constants}, dict.fromkeys(overrides or {}, "--set")
    )  # bad overrides fail before Ray starts
    if resume:
        _check_resumable(store, study_record(study, budget, constants, address))
    done = store.trial_ids() if resume else set()
    plan = plan_trials(study, budget, constants, max(budget.trials - len(done), 1), address, profile, data)
    try:
        done = recover(store) if resume else set()
        if not resume:
            store.write_study(study_record(study, budget, constants, address, plan))
        progress = Progress(
            label, budget.trials, study.objectives[0], live=plan.live, **_progress_budget(budget, constants)
        )
        progress.resumed(_status_counts(store) if done else {})
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with journal_storage(store, resume, study.name) as (storage, sync):  # resumed: repaired, stale trials failed
            start = time.monotonic()
            if budget.trials > len(done):
                with sigterm_as_sigint():
                    _fit(study, budget, store, constants, progress, (storage, sync), budget.trials - len(done), plan)
            interrupted = len(store.trial_ids()) < budget.trials  # Tune ended early: Ctrl-C or SIGTERM
            summary = {} if interrupted else summarise(study, budget, store, storage)
            wall_s = time.monotonic() - start
    finally:
        ray.shutdown()  # a private local Ray stops; a joined cluster is only disconnected from
    return SweepSummary(study.name, store.uri, dict(progress.counts), progress.best, wall_s, summary, interrupted)


@contextmanager
def sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM (what a cluster or a job stop sends) handled as Ctrl-C: Tune ends the sweep after its trials stop,
    so rows written stay whole and the study is left to --resume; a second one stops at once, as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _fit(
    study: Study,
    budget: Budget,
    store: ResultsStore,
    constants: dict[str, Any],
    progress: Progress,
    journal: tuple[Any, Callable[[], None]],
    trials: int,
    plan: Plan,
) -> None:
    """`trials` more configurations through Tune on the connected Ray, as many at once as the plan allows.
    `journal`: the Optuna storage and its sync (after every written trial)."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from genbench.sweep.trainable import Training, trial_main
    from genbench.train.shared import share

    _note_storage(store, plan.where)
    storage, sync = journal
    metrics, modes = [m for m, _ in study.objectives], [d for _, d in study.objectives]
    search = ConcurrencyLimiter(
        OptunaSearch(
            study.define_by_run(constants),
            metric=metrics if len(metrics) > 1 else metrics[0],
            mode=modes if len(modes) > 1 else modes[0],
            sampler=_sampler(study),
            storage=storage,
            study_name=study.name,
        ),
        max_concurrent=plan.live,
    )
    spread = next((m for m in metrics if m.startswith(("quality.", "likelihood."))), "quality.modes")
    training = Training(
        budget.seeds,
        study.cpus_per_trial,
        plan.request.gpu_share,
        _workers(study),
        _ray_storage(store, "ray_train"),
        share(plan.data) if plan.data is not None else None,
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            trial_main, objectives=tuple(metrics), spread_metric=spread, threshold=study.success, training=training
        ),
        tune.PlacementGroupFactory(plan.request.bundles),
    )
    price = _pricing(study, plan.profile)
    writer = make_writer(study, store, progress, budget.seeds, price, sync)
    callbacks = [writer, make_follower(search, plan, study, trials, progress)]
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=_scheduler(study, budget),
            num_samples=trials,
            reuse_actors=not study.distributed,
        ),
        run_config=tune.RunConfig(
            name=f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=_ray_storage(store),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=_trial_retries(study)),
            callbacks=callbacks,
        ),
    )
    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # Tune warns that its own (disabled) logs are missing
    # A failed trial's traceback: the writer prints its reason in one line and records it in the row.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    try:
        tuner.fit()
    except Exception:
        if writer.failed:  # Tune may wrap or re-raise the writer's error: the message is what matters
            raise ResultsWriteError(writer.failed) from None
        raise


def make_follower(limiter: Any, plan: Plan, study: Study, total: int, progress: Progress) -> Any:
    """A Tune Callback that looks at the cluster every REFRESH_S seconds and lets as many trials be live as fit now
    (or at the cluster's limit): nodes an autoscaler adds, or that join a fixed cluster, take trials at once."""
    from ray.tune import Callback

    class ConcurrencyFollower(Callback):
        def __init__(self) -> None:
            self.checked = time.monotonic()

        def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
            if time.monotonic() - self.checked < REFRESH_S:
                return
            self.checked = time.monotonic()
            view = read_cluster(plan.profile, plan.joined)
            live = concurrency(plan.request, view, study.max_concurrent, total)
            if live != limiter.max_concurrent:
                have = ", ".join(f"{v:g} {k}" for k, v in view.now.items() if v)
                print(
                    f"[{progress.label}] the cluster has {have or 'no CPU or GPU'} now: up to {live} trials at once",
                    file=progress.out,
                    flush=True,
                )
                limiter.max_concurrent = live
                progress.live = live  # its time left: trials at once

    return ConcurrencyFollower()


def _pricing(study: Study, profile: Profile | None) -> Callable[[dict[str, Any]], dict[str, float]] | None:
    """cost.usd of a row from the cluster profile: its GPU share of a node on GPU nodes, else its CPU share."""
    if profile is None or profile.price_per_node_hour <= 0:
        return None

    def price(row: dict[str, Any]) -> dict[str, float]:
        wall_s = row.get("cost.wall_s")
        if not isinstance(wall_s, (int, float)) or not math.isfinite(wall_s):
            return {}
        return {"cost.usd": profile.usd(wall_s, study.trial_cpus, float(row.get("cost.gpu_share") or 0.0))}

    return price


def _status_counts(store: ResultsStore) -> dict[str, int]:
    """Outcomes of the configurations already written (a configuration's status: see config_status)."""
    trials = store.read("trials").to_pandas()
    ids = trials["config_id"].fillna(trials["trial_id"]) if "config_id" in trials else trials["trial_id"]
    statuses = [config_status(list(group)) for _, group in trials["status"].groupby(ids)]
    return {s: statuses.count(s) for s in set(statuses)}


def _ray_storage(store: ResultsStore, name: str = "ray") -> str:
    return store.path(name) if "://" not in store.uri else f"{store.uri.rstrip('/')}/{name}"


def _trial_retries(study: Study) -> int:
    """Tune's retries of a trial whose process or node dies: none for data-parallel trials.

    A data-parallel trial's worker failures are Ray Train's to count (study.max_failures worker-group restarts from
    the latest checkpoint): Tune rerunning the trial from scratch as well would count each failure twice. Its
    driver holds a sliver of the head node (resources.driver_bundle), so no worker node takes it down; a driver that
    dies all the same (killed, out of memory) fails its trial, with a row that says so.
    """
    return 0 if study.distributed else study.max_failures


def _workers(study: Study) -> Any:
    """The Ray Train request of a data-parallel study's trials (None: they train in the trial process)."""
    if not study.distributed:
        return None
    from genbench.train.ray_worker import Workers

    return Workers(
        study.workers, study.cpus_per_trial, study.gpus_per_worker, study.placement.upper(), study.max_failures
    )


def _note_storage(store: ResultsStore, where: str) -> None:
    """Trials on other nodes write Ray's state (and Ray Train's checkpoints) there too: say it must be shared."""
    import ray

    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    if nodes > 1 and "://" not in store.uri:
        print(
            f"Note: {where} has {nodes} nodes and the results are at a local path ({store.uri}); every node "
            "must see that path (a shared file system), else give --out s3://... or gs://...",
            flush=True,
        )
