"""Ray Tune + Optuna runner of a study on a private local Ray; a callback writes every trial to the results store."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from genbench.config import from_flat, to_flat
from genbench.errors import GenbenchError
from genbench.results.schema import SCHEMA_VERSION
from genbench.results.store import ResultsStore
from genbench.sweep.progress import Progress
from genbench.sweep.space import DefineByRun
from genbench.sweep.spec import Budget, Study

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


def trial_row(study: Study, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The `trials` row: identity, status, every resolved config.* key, then the final metrics."""
    flat = to_flat(from_flat(config))
    row: dict[str, Any] = {"trial_id": trial_id, "study": study.name, "family": study.family,
                           "status": result.get("status", "failed"), "seed": flat["seed"],
                           "error": result.get("error", ""), "start_time": result.get("start_time"),
                           "end_time": result.get("end_time", time.time())}
    row.update({f"config.{k}": v for k, v in flat.items() if k not in ("family", "seed")})
    row.update({k: v for k, v in result.items()
                if k.split(".")[0] in ("quality", "likelihood", "stability", "cost", "provenance")})
    row["steps"] = result.get("steps", result.get("step", 0))
    return row


def make_writer(study: Study, store: ResultsStore, progress: Progress) -> Any:
    """A Tune Callback that gathers each trial's history chunks and writes its row when it ends, however it ends."""
    from ray.tune import Callback

    class ResultsWriter(Callback):
        def __init__(self) -> None:
            self.history: dict[str, list[dict[str, Any]]] = {}
            self.started: dict[str, float] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.started[trial.trial_id] = time.time()

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            self.history.setdefault(trial.trial_id, []).extend(result.get("history", []))

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            last = dict(trial.last_result or {})
            if not last.get("final"):  # stopped by a scheduler before its last report
                last.update(status="early_stopped", error="stopped by the scheduler")
            self._write(trial, last)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            error = str(trial.get_error() or "trial process failed").strip().splitlines()
            self._write(trial, {"status": "failed", "error": error[-1] if error else "trial process failed"})

        def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
            progress.show(running=sum(t.status == "RUNNING" for t in trials))

        def _write(self, trial: Any, result: dict[str, Any]) -> None:
            result.setdefault("start_time", self.started.get(trial.trial_id))
            row = trial_row(study, trial.trial_id, trial.config, result)
            store.write_trial(trial.trial_id, row, self.history.pop(trial.trial_id, []))
            progress.finished(trial.trial_id, row["status"], row)

    return ResultsWriter()


def _sampler(study: Study) -> Any:
    import optuna

    if study.algorithm == "random":
        return optuna.samplers.RandomSampler(seed=study.search_seed)
    return optuna.samplers.TPESampler(seed=study.search_seed)


def start_local_ray(num_cpus: int | None = None) -> None:
    """A private local Ray instance: never joins a cluster that happens to be running on this machine."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)


def optuna_storage(store: ResultsStore) -> Any:
    """The Optuna study lives in a journal file beside the results (crash-safe appends; optuna-dashboard opens it)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if "://" in store.uri:  # a journal needs a local file: the searcher's memory does not survive the driver there
        return None
    store.fs.create_dir(store.root, recursive=True)
    return optuna.storages.JournalStorage(JournalFileBackend(store.path("optuna.journal")))


def fail_stale_trials(storage: Any, study_name: str) -> int:
    """Trials a killed driver left RUNNING in the journal are marked FAIL, so that the searcher ignores them."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(stale)


def _check_resumable(store: ResultsStore, constants: dict[str, Any]) -> None:
    stored = store.read_study().get("constants")
    if stored != constants:
        changed = sorted(k for k in set(stored or {}) | set(constants) if (stored or {}).get(k) != constants.get(k))
        raise GenbenchError(f"{store.path('study.yaml')}: these results were made with other settings "
                            f"({', '.join(changed[:5])}); resume with the same study file and --set values, "
                            "or start a new sweep with another --out")


def run_sweep(study: Study, budget: Budget, out: str, label: str, overrides: dict[str, Any] | None = None,
              resume: bool = False) -> SweepSummary:
    """Run the study's trials with Ray Tune + OptunaSearch until `out` holds `budget.trials` rows.

    With `resume`, rows already in `out` are kept and counted, trials a killed driver left unfinished are
    run again as new trials, and the searcher continues from the Optuna journal beside the results.
    """
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from genbench.sweep.trainable import trial_main

    store = ResultsStore(out)
    constants = {**study.run_settings(budget), **(overrides or {})}
    from_flat(constants, {k: "--set" for k in overrides or {}})  # bad overrides fail before Ray starts
    done = store.trial_ids() if resume else set()
    if resume:
        _check_resumable(store, constants)
    else:
        store.write_study(study_record(study, budget, constants))
    progress = Progress(label, budget.trials, study.objectives[0])
    progress.counts = _status_counts(store) if done else {}
    remaining = budget.trials - len(done)
    if remaining <= 0:
        return SweepSummary(study.name, store.uri, progress.counts, None, 0.0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(store)
    if storage is not None and resume:
        fail_stale_trials(storage, study.name)
    start_local_ray()
    metrics, modes = [m for m, _ in study.objectives], [d for _, d in study.objectives]
    search = OptunaSearch(DefineByRun(study.space, constants), metric=metrics if len(metrics) > 1 else metrics[0],
                          mode=modes if len(modes) > 1 else modes[0], sampler=_sampler(study),
                          storage=storage, study_name=study.name)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    concurrent = study.max_concurrent or max(cpus // study.cpus_per_trial, 1)
    intermediate = all(m.startswith("quality.") for m in metrics)
    trainable = tune.with_resources(tune.with_parameters(trial_main, objectives=tuple(metrics),
                                                         intermediate=intermediate),
                                    {"cpu": study.cpus_per_trial})
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=search, num_samples=remaining, reuse_actors=True, max_concurrent_trials=concurrent),
        run_config=tune.RunConfig(name=f"{study.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  storage_path=_ray_storage(store), verbose=0,
                                  callbacks=[make_writer(study, store, progress)]))
    start = time.monotonic()
    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # Tune warns that its own (disabled) logs are missing
    try:
        tuner.fit()
    finally:
        ray.shutdown()
    return SweepSummary(study.name, store.uri, dict(progress.counts), progress.best, time.monotonic() - start)


def _status_counts(store: ResultsStore) -> dict[str, int]:
    statuses = store.read("trials").column("status").to_pylist()
    return {s: statuses.count(s) for s in set(statuses)}


def _ray_storage(store: ResultsStore) -> str:
    return store.path("ray") if "://" not in store.uri else store.uri.rstrip("/") + "/ray"


def study_record(study: Study, budget: Budget, constants: dict[str, Any]) -> dict[str, Any]:
    """study.yaml: the resolved study, the budget used, and the versions that produced the results."""
    import optuna
    import ray
    import torch

    import genbench

    return {"study": study.name, "family": study.family, "source": study.source,
            "objectives": [{"metric": m, "mode": d} for m, d in study.objectives],
            "budget": vars(budget), "algorithm": study.algorithm, "search_seed": study.search_seed,
            "constants": constants, "space": study.raw.get("space", {}), "cluster": "local",
            "schema_version": SCHEMA_VERSION,
            "versions": {"genbench": genbench.__version__, "torch": str(torch.__version__), "ray": ray.__version__,
                         "optuna": optuna.__version__},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
