"""The entrypoint of a study on a cluster (a submitted job, a KubeRay RayJob): join that Ray cluster, run the study."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

STUDY_ENV = "GENBENCH_STUDY_YAML"  # the study file's text, shipped with the job (it may live outside the project)
CLUSTER_ENV = "GENBENCH_CLUSTER"  # the profile's record (JSON): resources, limits and price of the cluster


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m genbench.cluster.remote", description="run a study on the Ray cluster this job runs on"
    )
    p.add_argument("space", metavar="SPACE.yaml")
    p.add_argument("--out", required=True, metavar="URI")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument(
        "--cluster",
        metavar="FILE",
        help="the cluster's file (a KubeRay RayJob names it in its image), when the job carries no profile of its own",
    )
    return p.parse_args(argv)


def study_file(space: str) -> str:
    """The shipped study text written under its own file name (so errors name it), else the path as given."""
    text = os.environ.get(STUDY_ENV)
    if not text:
        return space
    path = Path(tempfile.mkdtemp(prefix="genbench-study-")) / Path(space).name
    path.write_text(text, encoding="utf-8")
    return str(path)


def job_profile(cluster: str | None) -> Any:
    """The profile `genbench submit` shipped with the job, else the cluster file given, else None."""
    from genbench.cluster.profiles import Profile, load_profile

    record = json.loads(os.environ.get(CLUSTER_ENV) or "{}")
    if record:
        return Profile.from_record(record)
    return load_profile(cluster) if cluster else None


def check_credentials(profile: Any) -> None:
    """The variables the profile's credentials_env names are set here, on the cluster (never shipped by submit)."""
    from genbench.errors import GenbenchError

    missing = [name for name in (profile.credentials_env if profile else []) if not os.environ.get(name)]
    if missing:
        raise GenbenchError(
            f"the cluster's nodes do not set {', '.join(missing)} (named in the profile's "
            "credentials_env): start Ray there with them in its environment (KubeRay: env from a "
            "Secret), or give the nodes an identity and drop them from credentials_env"
        )


def main(argv: list[str] | None = None) -> int:
    import ray

    import genbench
    from genbench.errors import GenbenchError
    from genbench.sweep.engine import run_study, show

    args = parse(argv)
    print(f"genbench {genbench.__version__} from {Path(genbench.__file__).parent}", flush=True)  # the code shipped
    try:
        profile = job_profile(args.cluster)
        check_credentials(profile)
        ray.init(address="auto", log_to_driver=False)  # the sweep then runs on this cluster, not a private Ray
        outcome = run_study(
            study_file(args.space),
            dry_run=args.dry_run,
            out=args.out,
            overrides=[],
            address=ray.get_runtime_context().gcs_address,
            profile=profile,
        )
    except GenbenchError as exc:
        print(f"genbench: error: {exc}", file=sys.stderr)
        return 2
    return show(outcome)  # the job's log ends as `genbench dry-run` / `sweep` would; its exit code is the job's


if __name__ == "__main__":
    raise SystemExit(main())
