"""Load: a study of 200 tiny trials on local Ray writes 200 rows and their curves, and its dashboards build (the
10,000-trial curve is `genbench bench --case scale`, docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.ray

TRIALS = 200
STUDY = f"""
study: load
family: autoregressive
data: {{name: ring8, n_train: 500, n_test: 200}}
objectives: [{{metric: quality.modes, mode: max}}]
budget: {{trials: {TRIALS}, steps: 5, eval_every: 5}}
dry_run: {{trials: {TRIALS}, steps: 5, eval_every: 5}}
search: {{algorithm: random, seed: 0, max_concurrent: 2}}
fixed: {{train.batch_size: 32, eval.n_samples: 200}}
space:
  optim.lr: {{float: [1.0e-4, 1.0e-2], log: true}}
  autoregressive.mixtures: {{choice: [2, 3]}}
"""


def test_200_tiny_trials_all_land_once_and_the_dashboards_build(tmp_path: Path) -> None:
    (tmp_path / "load.yaml").write_text(STUDY)
    out = tmp_path / "out"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "genbench", "sweep", str(tmp_path / "load.yaml"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(f"{TRIALS} trials: {time.monotonic() - start:.0f} s wall, sweep and dashboards")  # a measurement, not a bound
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    trials = ds.dataset(out / "trials", format="parquet").to_table().to_pandas()
    assert len(trials) == TRIALS and trials["trial_id"].is_unique and set(trials["status"]) == {"completed"}
    history = ds.dataset(out / "history", format="parquet").to_table().to_pandas()
    assert set(history["trial_id"]) == set(trials["trial_id"]) and history.groupby("trial_id").size().min() >= 1
    assert not list(out.rglob(".tmp-*"))  # every write of 1,000 parts finished with its rename
    for page in ("index", "stability", "quality", "cost"):
        assert (out / "dashboards" / f"{page}.html").stat().st_size > 1000
    assert f"Done: {TRIALS} trials ({TRIALS} completed)" in result.stdout
