"""What the CLI's commands do: run a study, train one run, validate files, list registries."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from genbench.config import parse_set, resolved_text
from genbench.errors import ConfigError, GenbenchError
from genbench.jsonout import json_output
from genbench.results import safe_name

if TYPE_CHECKING:
    from genbench.results.store import ResultsStore


def study_command(
    space: str,
    dry_run: bool,
    out: str | None,
    overrides: list[str],
    resume: bool = False,
    address: str | None = None,
    max_failures: int | None = None,
    cluster: str | None = None,
) -> int:
    """dry-run / sweep: the study engine (genbench.sweep.engine) runs the study; this prints how it ended."""
    from genbench.shipped import resolve_study

    space = resolve_study(space)  # an unknown name fails before torch and Ray are imported
    from genbench.sweep.engine import run_study, show

    return show(
        run_study(
            space, dry_run, out, overrides, resume=resume, address=address, max_failures=max_failures, cluster=cluster
        )
    )


def _finish(out: str, summary_lines: list[str]) -> None:
    """A run's dashboards, then its summary lines and where its results and dashboards are."""
    from genbench.dashboards.site import write_dashboards
    from genbench.sweep.engine import results_lines

    index = write_dashboards(out)
    print("\n".join(summary_lines + results_lines(out, index)))


def sweep_address(given: str | None) -> str | None:
    """--address, else $RAY_ADDRESS unless that is the Jobs API URL the submit and jobs commands use."""
    if given:
        return given
    env = os.environ.get("RAY_ADDRESS", "")
    if env.startswith(("http://", "https://")):
        print(
            f"Note: RAY_ADDRESS={env} is a Jobs API URL (genbench submit, jobs); this sweep starts a private local "
            "Ray (give --address HOST:6379 to run it on that cluster)",
            flush=True,
        )
        return None
    return env or None


def _train_settings(family: str, data: str | None, preset: str | None, overrides: list[str]) -> dict[str, Any]:
    from genbench.gan.presets import GAN_PRESETS

    flat: dict[str, Any] = {"family": family}
    if data:
        flat["data.name"] = data
    if preset:
        if family != "gan" or preset not in GAN_PRESETS:
            from genbench.errors import suggest

            raise ConfigError(
                f"unknown preset {preset!r} for family {family!r}", key="--preset", fix=suggest(preset, GAN_PRESETS)
            )
        flat.update(GAN_PRESETS[preset][1])
    flat.update(parse_set(overrides))
    return flat


def train_one(
    family: str,
    data: str | None,
    preset: str | None,
    overrides: list[str],
    out: str | None,
    workers: Any = None,
    address: str | None = None,
) -> int:
    """One run, written as a one-trial study so that dashboards and readers treat it alike.

    Without `workers` it trains in this process; with them, data-parallel through Ray Train on `address`
    (or a private local Ray).
    """
    from genbench.config import from_flat, to_flat
    from genbench.results.store import ResultsStore
    from genbench.sweep.engine import prepare_out
    from genbench.sweep.progress import fmt_s
    from genbench.sweep.records import study_record, trial_row
    from genbench.sweep.spec import Budget, Study

    flat = _train_settings(family, data, preset, overrides)
    cfg = from_flat(flat, dict.fromkeys(flat, "--set"))
    device = _device_line(cfg, workers)  # before anything is written or moved aside
    resolved = to_flat(cfg)
    name = safe_name(f"train-{cfg.family}-{cfg.data.name}", "study")
    out = prepare_out(out or os.path.join("results", name))
    print("Resolved config:\n" + resolved_text(resolved), flush=True)
    print(device, flush=True)
    store = ResultsStore(out)
    budget = Budget(trials=1, steps=cfg.train.steps, eval_every=cfg.eval.every)
    study = Study(
        name=name, families=[cfg.family], objectives=[], budget=budget, dry_run=budget, fixed=resolved, space={}
    )
    store.write_study(study_record(study, budget, resolved))
    store.write_bytes("", "config.json", json.dumps(resolved, indent=2).encode())
    row, history = _train_here(flat, cfg) if workers is None else _train_distributed(flat, workers, address, store)
    store.write_trial("run-0", trial_row(study, "run-0", flat, row), history)
    scores = [
        f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("quality.", "likelihood.")) and isinstance(v, float)
    ]
    where = f" on {row['workers']} workers" if row.get("workers") else ""
    done = f"Done: {row['status']} after {row.get('steps', 0)} steps{where} in {fmt_s(row.get('cost.wall_s', 0))}"
    _finish(out, ["; ".join([done, ", ".join(scores)]) if scores else done])
    return 0 if row["status"] != "failed" else 1


def _device_line(cfg: Any, workers: Any) -> str:
    """Where the run will compute and with which options; an in-process run that asks for a missing GPU fails here."""
    from genbench.train.device import resolve
    from genbench.train.ray_worker import check_workers

    if workers is not None:  # each worker resolves train.device on its own node; rows record it as cost.device
        check_workers(cfg, workers)
        return (
            f"Device: each Ray Train worker's ({'its GPU' if workers.gpus else 'CPU'} unless train.device says "
            f"otherwise); bf16={cfg.train.bf16}, tf32={cfg.train.tf32}, channels_last={cfg.train.channels_last}, "
            f"compile={str(cfg.train.compile).lower()}"
        )
    return f"Device: {resolve(cfg.train).describe()}"


def _train_here(flat: dict[str, Any], cfg: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from genbench.train.run import run

    history: list[dict[str, Any]] = []
    row = run(flat, _train_reporter(history, cfg.train.steps), dict.fromkeys(flat, "--set"), keep_model=True)
    return row, history


def _train_distributed(
    flat: dict[str, Any], workers: Any, address: str | None, store: ResultsStore
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import ray

    from genbench.sweep.connect import start_local_ray
    from genbench.train.ray_worker import run_distributed

    print(
        f"Ray Train: {workers.count} workers x {workers.cpus} CPU"
        + (f" x {workers.gpus:g} GPU" if workers.gpus else "")
        + f", placement {workers.placement.lower()}, "
        f"on {address or 'a private local Ray'}",
        flush=True,
    )
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        start_local_ray(log_to_driver=True, dashboard=True)  # rank 0's progress lines; Ray Train's state API
    try:
        return run_distributed(flat, workers, store.path("ray_train"), keep_model=True)
    finally:
        ray.shutdown()


PROGRESS_EVERY_S = 10.0  # between evaluations, `genbench train` still prints a line this often


def _train_reporter(history: list[dict[str, Any]], steps: int) -> Any:
    """Keeps every report in `history` and prints a progress line at each evaluation, and at least every
    PROGRESS_EVERY_S seconds in between (a family whose evaluations are rare still shows it is training)."""
    start = last_line = time.monotonic()

    def report(step: int, values: dict[str, float]) -> None:
        nonlocal last_line
        history.append({"step": step, **values})
        now = time.monotonic()
        evals = {k: v for k, v in values.items() if k.startswith("eval.")}
        if not evals and now - last_line < PROGRESS_EVERY_S:
            return
        shown = evals or {k: v for k, v in values.items() if ".loss" in k}
        elapsed, last_line = now - start, now
        print(
            f"step {step}/{steps} | {', '.join(f'{k} {v:.4g}' for k, v in shown.items())} | "
            f"{elapsed:.1f}s elapsed, ~{elapsed / step * (steps - step):.0f}s left",
            flush=True,
        )

    return report


def validate_files(files: list[str]) -> int:
    """Validate study, cluster and dashboard definition files (a shipped study also by its name); one line per file,
    non-zero exit if any is invalid."""
    from genbench.shipped import resolve_study

    failed = 0
    for given in files:
        try:
            print(f"ok    {given}: {_validate_file(resolve_study(given))}")
        except GenbenchError as exc:
            failed += 1
            print(f"error {exc}", file=sys.stderr)
    return 1 if failed else 0


def _validate_file(path: str) -> str:
    """What `validate` says of a valid file; an invalid one raises its GenbenchError."""
    kind = _file_kind(path)
    if kind == "cluster":
        from genbench.cluster.profiles import validate_cluster_file

        return validate_cluster_file(path)
    if kind == "dashboard":
        from genbench.dashboards.spec import load_page

        page = load_page(path)
        return f"dashboard page '{page.name}', {len(page.panels)} panels"
    from genbench.sweep.spec import check_local_data, load_study

    study = load_study(path)
    check_local_data(study)
    return f"study '{study.name}', family {study.family}, {len(study.space)} searched keys"


def _file_kind(path: str) -> str:
    """'cluster' (a genbench profile, a Ray cluster-launcher file, a KubeRay manifest), 'dashboard' or 'study'."""
    from genbench.yamlfile import load_yaml

    keys = set(load_yaml(path).data)
    if {"genbench", "provider", "cluster_name", "apiVersion"} & keys:
        return "cluster"
    return "dashboard" if "panels" in keys or ("page" in keys and "study" not in keys) else "study"


def submit_study(
    space: str,
    cluster: str,
    address: str | None,
    dry_run: bool,
    out: str | None,
    show_upload: bool = False,
    allow_insecure_token: bool = False,
) -> int:
    """Submit a study as a Ray job to the cluster of a cluster file; print the job id and how to follow it.
    `show_upload`: only list the files the job would ship, with their sizes, and contact no cluster."""
    from genbench.cluster.jobs import resolve_address, submit, upload_files, upload_summary
    from genbench.cluster.profiles import load_profile
    from genbench.shipped import resolve_study

    space = resolve_study(space)
    profile = load_profile(cluster)
    files = upload_files()
    if show_upload:
        from genbench.sweep.spec import load_study

        load_study(space)  # what submit would refuse, refused here too
        print("\n".join(f"{size:>10}  {path}" for path, size in files))
        print(f"Upload: {upload_summary(files)} (and the study file {space}); nothing was submitted")
        return 0
    url = resolve_address(address, profile)
    job_id, results = submit(space, profile, url, dry_run, out, allow_insecure_token)
    tail = f" --address {url}" if url != profile.address else ""
    print(f"Submitted {job_id} to {url} ({profile.name}, {'dry-run' if dry_run else 'full'} budget)")
    print(f"Upload:    {upload_summary(files)} (genbench submit ... --show-upload lists them)")
    print(f"Results:   {results}")
    print(f"Follow:    genbench jobs logs {job_id} --follow{tail}")
    print(f"Status:    genbench jobs status {job_id}{tail}")
    print(f"Stop:      genbench jobs stop {job_id}{tail}")
    print(f"Dashboard: genbench dashboard {results}   (when the job has SUCCEEDED)")
    return 0


def jobs_command(
    action: str,
    job_id: str | None,
    address: str | None,
    cluster: str | None,
    follow: bool = False,
    allow_insecure_token: bool = False,
    as_json: bool = False,
) -> int:
    """`genbench jobs list|status|logs|stop` on the cluster at --address, $RAY_ADDRESS or the profile's."""
    from genbench.cluster import jobs
    from genbench.cluster.profiles import load_profile

    if as_json and action not in ("list", "status"):
        raise ConfigError(
            f"jobs {action} has no JSON output", key="--json", fix="only `genbench jobs list|status` take it"
        )
    url = jobs.resolve_address(address, load_profile(cluster) if cluster else None)
    insecure = allow_insecure_token
    if action == "list":
        return _jobs_list(url, insecure, as_json)
    if not job_id:
        raise GenbenchError(f"genbench jobs {action} needs a job id (see: genbench jobs list)")
    if action == "status":
        return _job_status(url, job_id, insecure, as_json)
    if action == "logs":
        if follow:
            try:
                jobs.follow_logs(url, job_id, lambda chunk: print(chunk, end="", flush=True), insecure)
            except KeyboardInterrupt:
                print(f"\nStopped following; {job_id} goes on (genbench jobs stop {job_id} stops it)")
                return 130
        else:
            print(jobs.job_logs(url, job_id, insecure), end="")
        return 0
    print(f"{job_id}: {jobs.stop_job(url, job_id, insecure)}")
    return 0


def _jobs_list(url: str, insecure: bool, as_json: bool) -> int:
    """One line a job (its start in local time), or {"address": url, "jobs": [job_record, ...]}."""
    from genbench.cluster.jobs import list_jobs

    if as_json:
        with json_output() as write:
            write({"address": url, "jobs": list_jobs(url, insecure)})
        return 0
    for row in list_jobs(url, insecure):
        start = _local_time(row["start"])
        print(f"{row['id']:<44} {row['status']:<10} {start:<19}  {row['results']}")
    return 0


def _local_time(utc: str | None) -> str:
    """'2026-11-30T13:05:12Z' as this machine's local '2026-11-30 14:05:12'; '-' for a job not started."""
    if not utc:
        return "-"
    from datetime import datetime, timezone

    stamp = datetime.strptime(utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _job_status(url: str, job_id: str, insecure: bool, as_json: bool) -> int:
    """'ID: STATUS (message)', or job_record as JSON; exit 1 when the job FAILED, either way."""
    from genbench.cluster.jobs import job_status

    if as_json:
        with json_output() as write:
            info = job_status(url, job_id, insecure)
            write(info)
    else:
        info = job_status(url, job_id, insecure)
        print(f"{job_id}: {info['status']}" + (f" ({info['message']})" if info["message"] else ""))
    return 0 if info["status"] != "FAILED" else 1


def listing(what: str) -> list[dict[str, Any]]:
    """The entries of `genbench list WHAT`, one dict each: `name` and `description`, and `better` (max | min) for
    metrics, `kind` (preset, gan.loss, gan.penalty, norm) for GAN variants, `families` and `file` for studies."""
    if what == "studies":
        return _studies()
    if what == "families":
        from genbench.families import FAMILIES

        return _entries(FAMILIES.describe())
    if what == "datasets":
        from genbench.data import DATASETS

        return _entries(DATASETS.describe())
    if what == "metrics":
        from genbench.metrics.names import METRICS

        return [{"name": name, "better": m.better, "description": m.doc} for name, m in METRICS.items()]
    return _gan_variants()


def _studies() -> list[dict[str, Any]]:
    """Each shipped study's name, families, description and file (each validated; torch-free)."""
    from genbench.shipped import STUDIES, study_names
    from genbench.sweep.spec import load_study

    studies = [load_study(STUDIES / f"{name}.yaml") for name in study_names()]
    return [
        {"name": name, "families": s.families, "description": s.description, "file": s.source}
        for name, s in zip(study_names(), studies)
    ]


def listing_line(entry: dict[str, Any]) -> str:
    """One entry as `genbench list` prints it: 'gan.loss hinge    ...', 'quality.fd    [min] ...',
    'gan_stability    [gan] ...'."""
    label = f"{entry['kind']} {entry['name']}" if "kind" in entry else entry["name"]
    tag = entry.get("better") or ", ".join(entry.get("families", []))
    return f"{label:<28} {f'[{tag}] ' if tag else ''}{entry['description']}"


def _entries(docs: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "description": doc} for name, doc in docs.items()]


def _gan_variants() -> list[dict[str, str]]:
    from genbench.gan import GAN_LOSSES, NORMS, PENALTIES
    from genbench.gan.presets import GAN_PRESETS

    out = [{"kind": "preset", "name": k, "description": doc} for k, (doc, _) in GAN_PRESETS.items()]
    for kind, registry in (("gan.loss", GAN_LOSSES), ("gan.penalty", PENALTIES), ("norm", NORMS)):
        out += [{"kind": kind, **entry} for entry in _entries(registry.describe())]
    return out


SAMPLE_FORMATS = ("png", "npy")


def sample_command(
    location: str, pick: tuple[str | None, str | None, int | None], n: int, out: str, overrides: list[str]
) -> int:
    """`genbench sample`: n samples of a kept model (pick: --trial, --config, --seed) as a PNG or a .npy file."""
    from genbench.train.model import DEVICE_KEYS

    ext = os.path.splitext(out)[1].lstrip(".").lower()
    if ext not in SAMPLE_FORMATS:
        raise ConfigError(f"cannot write {out!r}", key="--out", fix="name a .png (a picture) or a .npy (the array)")
    if n < 1:
        raise ConfigError(f"expected a number of samples >= 1, got {n}", key="-n", fix="e.g. -n 64")
    _, model = _kept_model(location, pick, overrides, DEVICE_KEYS)
    samples = model.sample(n)  # (n, D) or (n, C, H, W)
    _write_local(out, _sample_file(samples, model, ext))
    print(f"Wrote {n} samples of trial {model.trial_id} ({model.cfg.family}, seed {model.cfg.seed}) to {out}")
    return 0


def _sample_file(samples: Any, model: Any, ext: str) -> bytes:
    """The bytes of a samples file: the array (.npy), a grid of images or a scatter of 2-D points over the test
    split (.png)."""
    from genbench.results.samples import grid_png, npy_bytes, scatter_png

    array = samples.numpy()
    if ext == "npy":
        return npy_bytes(array)
    if model.data.is_image:
        return grid_png(array.clip(0, 1))
    if array.ndim != 2 or array.shape[1] != 2:
        raise ConfigError(
            f"a PNG shows images or 2-D points; {model.data.name} has {array.shape[1]}-D points",
            key="--out",
            fix="write a .npy instead",
        )
    return scatter_png(array, model.data.test.numpy())


def _write_local(path: str, data: bytes) -> None:
    """Written beside, then renamed: a reader never sees half a file."""
    from genbench.atomic import replace_durably

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigError(f"no such folder {directory!r}", key="--out", fix="create it, or write elsewhere")
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    with open(tmp, "wb") as f:
        f.write(data)
    replace_durably(tmp, path)


def _kept_model(
    location: str, pick: tuple[str | None, str | None, int | None], overrides: list[str], allowed: tuple[str, ...]
) -> tuple[Any, Any]:
    """(the Results, the kept model chosen by pick) with the --set keys checked against `allowed` first; torch
    computes with the run's thread count (train.threads, or --set's), as the run's scores were computed."""
    import torch

    from genbench.api import load_results
    from genbench.config import from_flat
    from genbench.train.model import check_keys

    settings = parse_set(overrides)
    check_keys(settings, allowed)
    results = load_results(location)
    trial, config, seed = pick
    model = results.model(trial, config=config, seed=seed, device=settings.get("train.device"))
    threads = {k: v for k, v in settings.items() if k == "train.threads"}
    torch.set_num_threads(from_flat({**model.config, **threads}, dict.fromkeys(threads, "--set")).train.threads)
    return results, model


def evaluate_command(
    location: str, pick: tuple[str | None, str | None, int | None], overrides: list[str], as_json: bool
) -> int:
    """`genbench evaluate`: a kept model's quality under its run's eval.* settings with --set's instead, beside the
    row's values."""
    from genbench.train.model import DEVICE_KEYS, EVALUATE_KEYS

    results, model = _kept_model(location, pick, overrides, (*EVALUATE_KEYS, *DEVICE_KEYS))
    settings = {k: v for k, v in parse_set(overrides).items() if k in EVALUATE_KEYS}
    document = _evaluation(results, model, settings)
    if as_json:
        with json_output() as write:
            write(document)
        return 0
    print("\n".join(_evaluation_lines(document)))
    return 0


def _evaluation(results: Any, model: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of `evaluate`: the run, the eval settings (now and the row's), the scores and the row's."""
    scored = model.evaluate(settings)
    cfg = model.with_eval(settings)
    row = results.trials[results.trials["trial_id"] == model.trial_id].iloc[0]
    return {
        "trial_id": model.trial_id,
        "config_id": str(row.get("config_id") or model.trial_id),
        "family": model.cfg.family,
        "seed": model.cfg.seed,
        "settings": {f"eval.{k}": getattr(cfg.eval, k) for k in ("n_samples", "features")},
        "row_settings": {f"eval.{k}": getattr(model.cfg.eval, k) for k in ("n_samples", "features")},
        "scores": {k: v for k, v in scored.items() if k.startswith("quality.")},
        "row": {k: row.get(k) for k in scored if k.startswith("quality.")},
        "provenance": {k: v for k, v in scored.items() if k.startswith("provenance.")},
    }


def _evaluation_lines(doc: dict[str, Any]) -> list[str]:
    def text(value: Any) -> str:
        return f"{value:.6g}" if isinstance(value, float) else "-" if value is None else str(value)

    def settings(values: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in values.items())

    lines = [
        f"Trial {doc['trial_id']} ({doc['family']}, configuration {doc['config_id']}, seed {doc['seed']})",
        f"Scored with {settings(doc['settings'])}; its row's with {settings(doc['row_settings'])}",
        f"{'metric':<24} {'score':>12} {'row':>12}",
    ]
    lines += [f"{k:<24} {text(v):>12} {text(doc['row'].get(k)):>12}" for k, v in doc["scores"].items()]
    return lines + [f"{k}: {text(v)}" for k, v in doc["provenance"].items()]
