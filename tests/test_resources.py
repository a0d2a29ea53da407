"""What a trial asks Ray for, how many trials run at once as the cluster is and may grow, and the default GPU share."""

from __future__ import annotations

from pathlib import Path

import pytest

from genbench.errors import ConfigError
from genbench.shipped import STUDIES
from genbench.sweep.resources import (
    ClusterView,
    concurrency,
    default_gpu_share,
    fits,
    memory_line,
    plan_line,
    resolve_gpu_share,
    trial_memory_bytes,
    trial_request,
)
from genbench.sweep.spec import fill_resources, load_study, set_resources

ROOT = Path(__file__).resolve().parents[1]
EIGHT_GPUS = ClusterView({"CPU": 64.0, "GPU": 8.0}, gpu_node=(64.0, 8.0))  # one node with eight GPUs


def _study(tmp_path: Path, resources: str = "", seeds: int = 1) -> object:
    text = (STUDIES / "gan_stability.yaml").read_text().replace("resources: {cpus_per_trial: 1}\n", resources)
    text = text.replace("seeds: 3}", f"seeds: {seeds}}}")
    (tmp_path / "s.yaml").write_text(text)
    return load_study(tmp_path / "s.yaml")


def test_fits_counts_each_resource() -> None:
    assert fits({"CPU": 1.0, "GPU": 0.25}, {"CPU": 64.0, "GPU": 8.0}) == 32
    assert fits({"CPU": 1.0, "GPU": 0.25}, {"CPU": 16.0, "GPU": 8.0}) == 16  # CPUs bound it
    assert fits({"CPU": 1.0, "GPU": 0.5}, {"CPU": 8.0}) == 0  # no GPU: nothing fits
    assert fits({"CPU": 1.0, "GPU": 0.1}, {"CPU": 64.0, "GPU": 1.0}) == 10  # 10 x 0.1 is one GPU, not 9


def test_default_share_packs_small_trials_on_every_gpu_of_a_node() -> None:
    assert default_gpu_share(1, EIGHT_GPUS) == 0.25  # 4 per GPU: 32 trials over 8 GPUs
    assert default_gpu_share(1, ClusterView({}, gpu_node=(16.0, 8.0))) == 0.5  # 2 CPUs per GPU
    assert default_gpu_share(4, ClusterView({}, gpu_node=(4.0, 1.0))) == 1.0  # one trial takes the node's CPUs
    assert default_gpu_share(1, ClusterView({"CPU": 2.0})) == 0.0  # no GPU node: CPU trials


def test_an_eight_gpu_node_runs_32_default_trials_at_once(tmp_path: Path) -> None:
    study = _study(tmp_path)
    note = resolve_gpu_share(study, "auto", EIGHT_GPUS)
    request = trial_request(study, 1, EIGHT_GPUS)
    assert study.gpus_per_trial == 0.25 and "4 trials per GPU" in note
    assert request.bundles == [{"CPU": 1.0, "GPU": 0.25}] and request.describe() == "1 CPU + 0.25 GPU"
    assert concurrency(request, EIGHT_GPUS, cap=0, remaining=64) == 32
    assert concurrency(request, EIGHT_GPUS, cap=6, remaining=64) == 6  # search.max_concurrent bounds it
    assert concurrency(request, EIGHT_GPUS, cap=0, remaining=5) == 5  # never more than the trials left


def test_the_device_and_the_study_override_the_default_share(tmp_path: Path) -> None:
    study = _study(tmp_path)
    assert resolve_gpu_share(study, "cpu", EIGHT_GPUS) == "" and study.gpus_per_trial == 0.0  # train.device=cpu
    pinned = _study(tmp_path, "resources: {gpus_per_trial: 1}\n")
    resolve_gpu_share(pinned, "auto", EIGHT_GPUS)
    assert pinned.gpus_per_trial == 1.0
    with pytest.raises(
        ConfigError,
        match=r"resources\.gpus_per_trial: train\.device is 'cuda' but the trials ask "
        r"Ray for no GPU \(the cluster has no GPU nodes\)",
    ):
        resolve_gpu_share(_study(tmp_path), "cuda", ClusterView({"CPU": 2.0}))


def test_an_autoscaling_cluster_queues_trials_for_the_nodes_it_can_add(tmp_path: Path) -> None:
    """Zero workers at start: trials wait as the autoscaler's demand, up to its limit (known) or one more (not)."""
    study = _study(tmp_path, "resources: {cpus_per_trial: 1, gpus_per_trial: 0.5}\n")
    empty = ClusterView(
        {"CPU": 0.0},
        gpu_node=(4.0, 1.0),
        grows_to={"CPU": 32.0, "GPU": 8.0},
        can_grow=True,
        limit_source="aws-gpu: 8 nodes of 4 CPU, 1 GPU",
    )
    request = trial_request(study, 1, empty)
    assert concurrency(request, empty, 0, 64) == 16
    assert "0 fit in the cluster now" in plan_line(request, empty, 16, 0)
    assert "up to 16 as it grows (aws-gpu: 8 nodes of 4 CPU, 1 GPU)" in plan_line(request, empty, 16, 0)
    unknown = ClusterView({"CPU": 4.0, "GPU": 1.0}, can_grow=True)
    assert concurrency(request, unknown, 0, 64) == 3  # 2 fit now, one more asks the autoscaler for a node
    fixed = ClusterView({"CPU": 4.0, "GPU": 1.0})
    assert concurrency(request, fixed, 0, 64) == 2  # a private local Ray does not grow
    assert concurrency(request, ClusterView({"CPU": 0.0}), 0, 64) == 1  # never zero


def test_seeds_train_side_by_side_as_far_as_the_cluster_holds_them(tmp_path: Path) -> None:
    study = _study(tmp_path, "resources: {gpus_per_trial: 0.5}\n", seeds=3)
    request = trial_request(study, 3, EIGHT_GPUS)
    assert request.lanes == 3 and request.bundles[0] == {} and request.bundles[1:] == [{"CPU": 1.0, "GPU": 0.5}] * 3
    assert request.demand == {"CPU": 3.0, "GPU": 1.5} and request.describe() == "3 x (1 CPU + 0.5 GPU)"
    assert trial_request(study, 3, ClusterView({"CPU": 2.0, "GPU": 1.0})).lanes == 2


def test_a_profile_fills_what_the_study_leaves_out_and_set_overrides_both(tmp_path: Path) -> None:
    study = _study(tmp_path, "resources: {cpus_per_trial: 2}\n")
    assert fill_resources(study, {"cpus_per_trial": 4, "gpus_per_trial": 0.5}, "p.yaml") == ["gpus_per_trial"]
    assert (study.cpus_per_trial, study.gpus_per_trial) == (2, 0.5)  # the study's own key wins
    rest = set_resources(study, {"resources.gpus_per_trial": 0.25, "train.steps": 10})
    assert rest == {"train.steps": 10} and (study.cpus_per_trial, study.gpus_per_trial) == (2, 0.25)
    with pytest.raises(ConfigError, match=r"--set: resources\.gpus_per_trial: expected a number >= 0"):
        set_resources(study, {"resources.gpus_per_trial": 1.5})  # Ray: whole GPUs above one
    with pytest.raises(ConfigError, match=r"--set: resources\.gpu: unknown key"):
        set_resources(study, {"resources.gpu": 1})


def test_gpus_per_trial_is_checked_in_the_study_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"s\.yaml:\d+: resources\.gpus_per_trial: expected a number"):
        _study(tmp_path, "resources: {gpus_per_trial: -1}\n")
    with pytest.raises(ConfigError, match=r"resources\.gpus_per_trial: a data-parallel trial's GPUs are its"):
        _study(tmp_path, "resources: {gpus_per_trial: 0.5, workers: 2}\n")


def test_a_sweep_warns_when_its_trials_at_once_may_need_more_memory_than_the_cluster_has() -> None:
    view = ClusterView({"CPU": 16.0}, memory_bytes=8 * 2**30)
    each = trial_memory_bytes(["vae"], (3, 32, 32))
    assert trial_memory_bytes(["vae", "gan"], (3, 32, 32)) >= each  # the largest family of the study counts
    assert trial_memory_bytes(["vae"], (3, 64, 64)) > each > trial_memory_bytes(["vae"], (1, 8, 8))
    assert trial_memory_bytes(["vae"], (3, 32, 32), processes=3) == pytest.approx(3 * each)
    fit = int(view.memory_bytes // each)
    assert memory_line(["vae"], (3, 32, 32), 1, fit, view) == ""  # as many as fit: no warning
    line = memory_line(["vae"], (3, 32, 32), 1, 16, view)
    assert line.startswith("Warning: memory: 16 trials at once") and f"search.max_concurrent: {fit}" in line
    assert "\n" not in line and "8.0 GiB" in line
    assert "even one may not fit" in memory_line(["vae"], (3, 256, 256), 1, 2, view)
    assert memory_line(["vae"], None, 1, 16, view) == ""  # data loaded by each trial: its shape is unknown here
    assert memory_line(["vae"], (3, 32, 32), 1, 16, ClusterView({"CPU": 16.0})) == ""  # memory unknown
