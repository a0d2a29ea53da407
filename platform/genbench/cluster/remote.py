"""The entrypoint of a submitted study on the cluster: join that Ray cluster, run the study, record the cluster."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

STUDY_ENV = "GENBENCH_STUDY_YAML"  # the study file's text, shipped with the job (it may live outside the project)
CLUSTER_ENV = "GENBENCH_CLUSTER"  # the profile's record (JSON) for study.yaml


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m genbench.cluster.remote",
                                description="run a study on the Ray cluster this job runs on")
    p.add_argument("space", metavar="SPACE.yaml")
    p.add_argument("--out", required=True, metavar="URI")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--cluster-name", default="", help="recorded in study.yaml when the job carries no profile")
    return p.parse_args(argv)


def study_file(space: str) -> str:
    """The shipped study text written under its own file name (so errors name it), else the path as given."""
    text = os.environ.get(STUDY_ENV)
    if not text:
        return space
    path = Path(tempfile.mkdtemp(prefix="genbench-study-")) / Path(space).name
    path.write_text(text, encoding="utf-8")
    return str(path)


def record_cluster(out: str, cluster_name: str) -> None:
    """study.yaml's `cluster`: the profile (name, GPU type, price per node-hour) instead of `local`."""
    from genbench.results.store import ResultsStore

    record = json.loads(os.environ.get(CLUSTER_ENV) or "{}") or {"name": cluster_name or "ray-cluster"}
    record["ray_address"] = os.environ.get("RAY_ADDRESS", "")
    store = ResultsStore(out)
    study = store.read_study()
    study["cluster"] = record
    store.write_study(study)


def main(argv: list[str] | None = None) -> int:
    import ray

    from genbench.commands import run_study
    from genbench.errors import GenbenchError

    args = parse(argv)
    ray.init(address="auto", log_to_driver=False)  # the sweep then runs on this cluster, not a private Ray
    try:
        code = run_study(study_file(args.space), dry_run=args.dry_run, out=args.out, overrides=[])
        record_cluster(args.out, args.cluster_name)
        return code
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
