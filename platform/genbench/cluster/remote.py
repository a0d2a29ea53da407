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


def node_share(trial_cpus: int, cpus_per_node: int) -> float:
    """The part of a node one trial holds: its CPUs over the node's (the whole node when that is unknown)."""
    return min(1.0, trial_cpus / cpus_per_node) if cpus_per_node > 0 else 1.0


def add_usd(out: str, usd_per_hour: float) -> int:
    """`cost.usd` = cost.wall_s / 3600 x the trial's share of the node's price, added to every trials part.

    Each part is replaced whole and atomically (ResultsStore.write_bytes), its metadata kept; returns the parts.
    """
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from genbench.results.store import ResultsStore

    store = ResultsStore(out)
    parts = store._parts("trials")
    for info in parts:
        table = pq.read_table(info.path, filesystem=store.fs)
        if "cost.wall_s" not in table.column_names:
            continue
        usd = pa.array([None if s is None else s / 3600 * usd_per_hour for s in table["cost.wall_s"].to_pylist()],
                       pa.float64())
        if "cost.usd" in table.column_names:
            table = table.drop_columns(["cost.usd"])
        table = table.append_column("cost.usd", usd).replace_schema_metadata(table.schema.metadata)
        sink = io.BytesIO()
        pq.write_table(table, sink)
        store.write_bytes("trials", info.base_name, sink.getvalue())
    return len(parts)


def price_trials(out: str, study_path: str) -> None:
    """Rows priced from the profile shipped with the job; the dashboards are rebuilt to show cost.usd."""
    from genbench.dashboards.site import write_dashboards
    from genbench.sweep.spec import load_study

    record = json.loads(os.environ.get(CLUSTER_ENV) or "{}")
    price = float(record.get("price_per_node_hour") or 0.0)
    if price <= 0:
        return
    share = node_share(load_study(study_path).trial_cpus, int(record.get("cpus_per_node") or 0))
    add_usd(out, price * share)
    write_dashboards(out)


def main(argv: list[str] | None = None) -> int:
    import ray

    from genbench.commands import run_study
    from genbench.errors import GenbenchError

    args = parse(argv)
    ray.init(address="auto", log_to_driver=False)  # the sweep then runs on this cluster, not a private Ray
    try:
        space = study_file(args.space)
        code = run_study(space, dry_run=args.dry_run, out=args.out, overrides=[])
        record_cluster(args.out, args.cluster_name)
        price_trials(args.out, space)
        return code
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
