"""The `genbench` command line: argument parsing and user-facing output; the work lives in the package."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from genbench.jsonout import JSON_HELP, json_output

EPILOG = """examples:
  genbench dry-run gan_stability                        a shipped study at its dry-run budget on this machine
  genbench copy-study gan_stability my_study.yaml       copy a shipped study out to edit; then dry-run my_study.yaml
  genbench train gan --data grid25 --set train.steps=2000
  genbench dashboard results/gan_stability-dry-run      rebuild the HTML dashboards of a results directory
  genbench dashboard results/gan_stability --serve     serve them on 127.0.0.1, refreshed while a sweep runs
  genbench report results/families-dry-run --markdown   the measured family comparison table
  genbench sample results/vae-dry-run -n 64 --out best.png   samples of the best configuration's kept model
  genbench evaluate results/vae-dry-run --trial ID --set eval.n_samples=5000   score a kept model again
  genbench validate my_study.yaml clusters/*.yaml
  genbench submit gan_stability --cluster clusters/aws-gpu.yaml
  genbench jobs logs JOB_ID --follow --address http://127.0.0.1:8265
  genbench list studies                                the shipped studies: families and what each asks
  genbench list gan-variants
  genbench list keys vae                               every run key of the VAE: type, default, meaning
"""


STUDY_HELP = "a study file, or a shipped study's name (see: genbench list studies); a file that exists wins"


def _add_study_args(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("space", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--out", metavar="DIR", help=out_help)
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a run setting for every trial, e.g. --set train.batch_size=128, or the trials' "
        "resources, e.g. --set resources.gpus_per_trial=0.25 (repeatable)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="complete an interrupted study in --out: finished trials are kept, unfinished ones rerun, "
        "the search continues from the Optuna journal",
    )
    p.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="run the trials on this existing Ray cluster (its GCS address, or 'auto' on a node of it) "
        "instead of a private local Ray; default $RAY_ADDRESS. --out must be a path every node "
        "sees, or a URI such as s3://bucket/prefix",
    )
    p.add_argument(
        "--max-failures",
        type=int,
        metavar="N",
        help="times a trial whose process or node dies is run again (default: the study's "
        "resources.max_failures, else 2)",
    )
    p.add_argument(
        "--cluster",
        metavar="FILE",
        help="cluster file (see clusters/): its trial_resources fill in what the study's resources: "
        "leaves out, its storage is the default --out, its max_nodes tell how far the cluster grows, "
        "its price gives every row cost.usd",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genbench",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmark and hyperparameter search for generative model families, on Ray Tune + Optuna. "
        "Results land in Parquet; dashboards are static HTML.",
    )
    from genbench import __version__

    parser.add_argument("--version", action="version", version=f"genbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("dry-run", help="run a study at its dry-run budget (a private local Ray, or --address)")
    _add_study_args(p, "results directory (default: results/<study>-dry-run)")
    p = sub.add_parser("sweep", help="run a study at its full budget (a private local Ray, or --address)")
    _add_study_args(p, "results directory (default: results/<study>)")
    p = sub.add_parser("train", help="train one run of a family (in this process, or data-parallel with Ray Train)")
    p.add_argument("family", help="family name (see: genbench list families)")
    p.add_argument("--data", help="dataset name (see: genbench list datasets)")
    p.add_argument("--preset", help="named variant for the GAN, e.g. wgan_gp (see: genbench list gan-variants)")
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="run setting, e.g. --set optim.lr_g=1e-4 (repeatable)",
    )
    p.add_argument("--out", metavar="DIR", help="results directory (default: results/train-<family>-<data>)")
    _add_worker_args(p)
    _add_cluster_commands(sub)
    p = sub.add_parser("dashboard", help="build (and with --serve, serve) the HTML dashboards of a results directory")
    p.add_argument("results", metavar="RESULTS", help="results directory written by dry-run, sweep or train")
    p.add_argument(
        "--serve",
        action="store_true",
        help="serve the site on 127.0.0.1 and rebuild it whenever the results change (Ctrl-C stops)",
    )
    p.add_argument("--port", type=int, default=8050, help="port for --serve (default 8050; 0 picks a free one)")
    p = sub.add_parser("report", help="print the measured family comparison table of a results directory")
    p.add_argument("results", metavar="RESULTS", help="results directory written by dry-run, sweep or train")
    p.add_argument("--markdown", action="store_true", help="print it as a Markdown table")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    _add_model_commands(sub)
    p = sub.add_parser("validate", help="check study, cluster and dashboard definition files; prints one line per file")
    p.add_argument("files", metavar="FILE", nargs="+", help="a file, or a shipped study's name")
    p = sub.add_parser(
        "list", help="list shipped studies, families, datasets, metrics, GAN variants or run keys with one line each"
    )
    p.add_argument("what", choices=["studies", "families", "datasets", "metrics", "gan-variants", "keys"])
    p.add_argument("family", nargs="?", metavar="FAMILY", help="keys: only this family's (defaults are its own)")
    p.add_argument("--markdown", action="store_true", help="keys: print them as Markdown tables")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p = sub.add_parser("copy-study", help="copy a shipped study out to edit (never over a file without --force)")
    p.add_argument("name", metavar="NAME", help="a shipped study (see: genbench list studies)")
    p.add_argument("dest", nargs="?", metavar="DEST", help="file or folder to write (default: ./NAME.yaml)")
    p.add_argument("--force", action="store_true", help="replace DEST if it exists")
    _add_bench_command(sub)
    return parser


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="draw samples from a kept model of a results directory (a PNG or a .npy)")
    _add_model_args(p, "train.device, train.threads")
    p.add_argument("-n", type=int, required=True, metavar="N", help="how many samples")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="FILE.png: an image grid, or 2-D points over the test split; FILE.npy: the array (n, D) or (n, C, H, W)",
    )
    p = sub.add_parser("evaluate", help="score a kept model again, with other eval.* settings")
    _add_model_args(p, "eval.n_samples, eval.features, eval.inception_weights, train.device, train.threads")
    p.add_argument("--json", action="store_true", help=JSON_HELP)


def _add_model_args(p: argparse.ArgumentParser, keys: str) -> None:
    p.add_argument("results", metavar="RESULTS", help="results directory (or URI) written by dry-run, sweep or train")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--trial", metavar="ID", help="the run (a trials row's trial_id); default: the best configuration"
    )
    which.add_argument("--config", metavar="ID", help="a configuration (config_id): its run under --seed")
    p.add_argument("--seed", type=int, metavar="S", help="which seed's run of the configuration (default its first)")
    p.add_argument(
        "--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[], help=f"one of {keys} (repeatable)"
    )


BENCH_CASES = (
    "loop",
    "evaluation",
    "members",
    "sweep_overhead",
    "concurrency",
    "ray_train",
    "search",
    "sampling",
    "startup",
    "scale",
    "scale_ray",
)


def _add_bench_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time the platform's own costs against baselines run beside them (ratios)")
    p.add_argument("--quick", action="store_true", help="small versions of every case (a few minutes on 2 CPUs)")
    p.add_argument("--json", metavar="FILE", help="report file (default: benchmarks/results/bench[-quick].json)")
    p.add_argument(
        "--case",
        dest="cases",
        metavar="NAME",
        nargs="+",
        action="extend",
        default=[],
        help=f"run only these cases (repeatable): {', '.join(BENCH_CASES)}",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from genbench.errors import GenbenchError

    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "dry-run": cmd_sweep,
        "sweep": cmd_sweep,
        "train": cmd_train,
        "dashboard": cmd_dashboard,
        "report": cmd_report,
        "sample": cmd_sample,
        "evaluate": cmd_evaluate,
        "validate": cmd_validate,
        "list": cmd_list,
        "submit": cmd_submit,
        "jobs": cmd_jobs,
        "bench": cmd_bench,
        "copy-study": cmd_copy_study,
    }
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()  # inside the try: a reader that went away fails here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # `genbench report ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush must not fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a program ended by a closed pipe
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genbench: interrupted; trials already finished are kept in the results directory", file=sys.stderr)
        return 130


def cmd_sweep(args: argparse.Namespace) -> int:
    from genbench.commands import study_command, sweep_address

    return study_command(
        args.space,
        dry_run=args.command == "dry-run",
        out=args.out,
        overrides=args.overrides,
        resume=args.resume,
        address=sweep_address(args.address),
        max_failures=args.max_failures,
        cluster=args.cluster,
    )


def _add_worker_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data-parallel training with Ray Train (off with one CPU worker)")
    g.add_argument("--workers", type=int, default=1, help="data-parallel workers (default 1: train in this process)")
    g.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs and torch threads per worker (default 1)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per worker (default 0)")
    g.add_argument(
        "--placement",
        choices=("pack", "spread"),
        default="pack",
        help="pack workers on few nodes, or spread them one per node (default pack)",
    )
    g.add_argument(
        "--max-failures",
        type=int,
        default=2,
        help="restarts of the worker group from its latest checkpoint before the run fails (default 2)",
    )
    g.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to run on (default $RAY_ADDRESS, else a private local Ray)",
    )


def cmd_train(args: argparse.Namespace) -> int:
    from genbench.commands import train_one
    from genbench.errors import ConfigError
    from genbench.train.ray_worker import Workers

    if (
        args.workers < 1
        or args.cpus_per_worker < 1
        or not 0 <= args.gpus_per_worker < float("inf")
        or args.max_failures < 0
    ):  # argparse's float() takes 'nan', which no `< 0` check refuses
        raise ConfigError(
            "workers and CPUs per worker must be >= 1, GPUs and failures >= 0",
            key="--workers",
            fix="e.g. --workers 2 --cpus-per-worker 1",
        )
    distributed = args.workers > 1 or args.gpus_per_worker > 0 or bool(args.address)
    workers = (
        Workers(args.workers, args.cpus_per_worker, args.gpus_per_worker, args.placement.upper(), args.max_failures)
        if distributed
        else None
    )
    return train_one(args.family, args.data, args.preset, args.overrides, args.out, workers, args.address)


def _add_cluster_commands(sub: argparse._SubParsersAction) -> None:
    address_help = "the cluster's Jobs API, e.g. http://127.0.0.1:8265 (default: $RAY_ADDRESS, else the profile's)"
    insecure_help = (
        "send Ray's token over plain http to a host other than this machine (refused without it: "
        "anyone on the network path could read it; prefer https or a tunnel to 127.0.0.1)"
    )
    p = sub.add_parser("submit", help="run a study as a Ray job on a cluster (Jobs API, token authentication)")
    p.add_argument("space", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--cluster", required=True, metavar="FILE", help="cluster file (see clusters/)")
    p.add_argument("--address", metavar="URL", help=address_help)
    p.add_argument("--dry-run", action="store_true", help="the study's dry-run budget instead of its full budget")
    p.add_argument("--out", metavar="URI", help="results location (default: <profile storage>/<study>[-dry-run])")
    p.add_argument(
        "--show-upload",
        action="store_true",
        help="list every file the job would ship, with its size, and the total; submit nothing and contact no cluster",
    )
    p.add_argument("--allow-insecure-token", action="store_true", help=insecure_help)
    p = sub.add_parser("jobs", help="list, follow, inspect or stop the jobs of a cluster")
    p.add_argument("action", choices=["list", "status", "logs", "stop"])
    p.add_argument("job_id", nargs="?", metavar="ID", help="job id printed by submit (not for list)")
    p.add_argument("--address", metavar="URL", help=address_help)
    p.add_argument("--cluster", metavar="FILE", help="take the address from this cluster file")
    p.add_argument("--follow", action="store_true", help="logs: keep printing until the job ends")
    p.add_argument("--json", action="store_true", help="list, status: " + JSON_HELP)
    p.add_argument("--allow-insecure-token", action="store_true", help=insecure_help)


def cmd_submit(args: argparse.Namespace) -> int:
    from genbench.commands import submit_study

    return submit_study(
        args.space, args.cluster, args.address, args.dry_run, args.out, args.show_upload, args.allow_insecure_token
    )


def cmd_jobs(args: argparse.Namespace) -> int:
    from genbench.commands import jobs_command

    return jobs_command(
        args.action, args.job_id, args.address, args.cluster, args.follow, args.allow_insecure_token, args.json
    )


def cmd_dashboard(args: argparse.Namespace) -> int:
    if args.serve:
        if not 0 <= args.port <= 65535:  # checked before anything is built; bind() would raise OverflowError
            from genbench.errors import ConfigError

            raise ConfigError(
                f"expected a port in 0..65535, got {args.port}",
                key="--port",
                fix="e.g. --port 8050, or --port 0 for a free one",
            )
        from genbench.dashboards.serve import serve

        return serve(args.results, args.port)
    from genbench.dashboards.site import write_dashboards

    print(f"Dashboard: {write_dashboards(args.results)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from genbench.dashboards.table import report, report_document

    _one_format(args.markdown, args.json)
    if args.json:
        with json_output() as write:
            write(report_document(args.results))
        return 0
    print(report(args.results, markdown=args.markdown))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from genbench.commands import sample_command

    return sample_command(args.results, (args.trial, args.config, args.seed), args.n, args.out, args.overrides)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genbench.commands import evaluate_command

    return evaluate_command(args.results, (args.trial, args.config, args.seed), args.overrides, args.json)


def _one_format(markdown: bool, as_json: bool) -> None:
    if markdown and as_json:
        from genbench.errors import ConfigError

        raise ConfigError("--markdown and --json both given", key="--json", fix="give one of them")


def cmd_validate(args: argparse.Namespace) -> int:
    from genbench.commands import validate_files

    return validate_files(args.files)


def cmd_copy_study(args: argparse.Namespace) -> int:
    from genbench.shipped import copy_study

    written = copy_study(args.name, args.dest, args.force)
    print(f"Copied the shipped study {args.name} to {written}; edit it, then: genbench dry-run {written}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from genbench.bench.harness import run_bench  # torch and ray are imported by the cases that need them

    return run_bench(args.cases, args.quick, args.json)


def cmd_list(args: argparse.Namespace) -> int:
    from genbench.commands import listing, listing_line

    _one_format(args.markdown, args.json)
    if args.what == "keys":
        return _list_keys(args.family, args.markdown, args.json)
    if args.family or args.markdown:
        from genbench.errors import ConfigError

        raise ConfigError(
            "takes no FAMILY or --markdown",
            key=f"list {args.what}",
            fix="only `genbench list keys [FAMILY] [--markdown]` does",
        )
    if args.json:
        with json_output() as write:
            write({"what": args.what, "entries": listing(args.what)})
        return 0
    for entry in listing(args.what):
        print(listing_line(entry))
    return 0


def _list_keys(family: str | None, markdown: bool, as_json: bool) -> int:
    """Key, type, default, meaning, from the typed config dataclasses."""
    from genbench.runkeys import describe_keys, format_keys, keys_document

    if as_json:
        with json_output() as write:
            write(keys_document(describe_keys(family), family))
        return 0
    print(format_keys(describe_keys(family), markdown), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
