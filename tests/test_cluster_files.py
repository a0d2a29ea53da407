"""Every file in clusters/ validates (launcher files against Ray's own schema); bad ones name the file, line and key."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from genbench.cli import main
from genbench.cluster.jobs import EXCLUDES, entrypoint, resolve_address, runtime_env
from genbench.cluster.profiles import Profile, load_profile, validate_cluster_file
from genbench.errors import ConfigError, GenbenchError
from genbench.shipped import STUDIES, resolve_study

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_FILES = sorted((ROOT / "clusters").rglob("*.yaml"))


def test_the_shipped_cluster_files_are_all_there() -> None:
    names = {str(p.relative_to(ROOT / "clusters")) for p in CLUSTER_FILES}
    assert {
        "local.yaml",
        "aws-gpu.yaml",
        "gcp-gpu.yaml",
        "kuberay/raycluster.yaml",
        "kuberay/rayjob.yaml",
        "kuberay/genbench.yaml",
    } <= names


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: str(p.relative_to(ROOT / "clusters")))
def test_every_cluster_file_validates(path: Path) -> None:
    assert validate_cluster_file(path)


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "gcp-gpu.yaml"])
def test_launcher_files_pass_rays_own_schema_and_carry_a_gpu_profile(name: str) -> None:
    import jsonschema
    import ray.autoscaler
    import yaml

    config = yaml.safe_load((ROOT / "clusters" / name).read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert any(t.get("resources", {}).get("GPU") for t in config["available_node_types"].values())
    profile = load_profile(ROOT / "clusters" / name)
    assert profile.gpu_type and profile.price_per_node_hour > 0 and "://" in profile.storage


def test_kuberay_manifests_have_gpu_worker_groups_and_the_study_as_entrypoint() -> None:
    assert "1 GPU worker group" in validate_cluster_file(ROOT / "clusters/kuberay/raycluster.yaml")
    assert "genbench.cluster.remote" in (ROOT / "clusters/kuberay/rayjob.yaml").read_text()
    assert load_profile(ROOT / "clusters/kuberay/raycluster.yaml").name == "kuberay-gpu"  # its genbench.yaml


def test_local_profile_is_the_embedded_default() -> None:
    local = load_profile(ROOT / "clusters/local.yaml")
    assert (local.storage, local.address, local.price_per_node_hour) == ("results", "", 0.0)
    assert local.results_uri("gan_stability", dry_run=True) == "results/gan_stability-dry-run"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_bad_launcher_key_is_named_with_its_line(tmp_path: Path) -> None:
    text = (ROOT / "clusters/aws-gpu.yaml").read_text().replace("max_workers: 8\nupscaling", "max_wrkers: 8\nupscaling")
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        validate_cluster_file(path)
    line = text.splitlines().index("max_wrkers: 8") + 1
    assert f"{path}:{line}: max_wrkers:" in str(err.value) and "ray-schema.json" in str(err.value)


def test_rays_own_checks_after_its_defaults(tmp_path: Path) -> None:
    text = (
        (ROOT / "clusters/aws-gpu.yaml")
        .read_text()
        .replace("    min_workers: 0\n    max_workers: 8\n", "    min_workers: 9\n    max_workers: 8\n")
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml: Ray refuses the cluster config"):
        validate_cluster_file(_write(tmp_path, "bad.yaml", text))


def test_a_bad_launcher_value_is_named(tmp_path: Path) -> None:
    text = (
        (ROOT / "clusters/gcp-gpu.yaml")
        .read_text()
        .replace("resources: {CPU: 8, GPU: 1}", "resources: {CPU: eight, GPU: 1}")
    )
    with pytest.raises(ConfigError, match=r"available_node_types\.gpu_l4\.resources\.CPU: 'eight' is not"):
        validate_cluster_file(_write(tmp_path, "bad.yaml", text))


def test_a_bad_profile_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.yaml", "genbench:\n  name: x\n  storage: /shared\n  price_per_nodehour: 2\n")
    with pytest.raises(
        ConfigError,
        match=r"p\.yaml:4: genbench\.price_per_nodehour: unknown profile key "
        r"\(did you mean 'price_per_node_hour'\?\)",
    ):
        load_profile(path)
    path = _write(tmp_path, "q.yaml", "genbench:\n  storage: /shared\n  trial_resources: {cpus_per_trial: 0}\n")
    with pytest.raises(ConfigError, match=r"q\.yaml:3: genbench\.trial_resources\.cpus_per_trial: expected"):
        load_profile(path)
    path = _write(tmp_path, "r.yaml", "genbench:\n  storage: /shared\n  address: 127.0.0.1:8265\n")
    with pytest.raises(ConfigError, match=r"genbench\.address: '127\.0\.0\.1:8265' is not a Jobs API URL"):
        load_profile(path)


def test_a_bad_kuberay_manifest_is_named(tmp_path: Path) -> None:
    text = (ROOT / "clusters/kuberay/raycluster.yaml").read_text().replace("      minReplicas: 0\n", "")
    with pytest.raises(ConfigError, match=r"spec\.workerGroupSpecs\[0\]\.minReplicas: missing"):
        validate_cluster_file(_write(tmp_path, "raycluster.yaml", text))


def test_validate_command_takes_study_and_cluster_files(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["validate", str(STUDIES / "gan_stability.yaml"), *map(str, CLUSTER_FILES)]) == 0
    assert capsys.readouterr().out.count("ok    ") == len(CLUSTER_FILES) + 1
    bad = _write(tmp_path, "bad.yaml", "genbench:\n  storage: /x\n  gpu: A100\n")
    assert main(["validate", str(bad)]) == 1
    assert "genbench.gpu: unknown profile key" in capsys.readouterr().err


def test_address_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    local, aws = load_profile(ROOT / "clusters/local.yaml"), load_profile(ROOT / "clusters/aws-gpu.yaml")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None, aws) == "http://127.0.0.1:8265"
    with pytest.raises(GenbenchError, match="no cluster address"):
        resolve_address(None, local)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:8265")
    assert resolve_address(None, aws) == "http://10.0.0.5:8265"
    assert resolve_address("https://ray.example.com", aws) == "https://ray.example.com"
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert resolve_address(None, aws) == "http://127.0.0.1:8265"
    with pytest.raises(GenbenchError, match="Ray Client address"):
        resolve_address("ray://head:10001", aws)


def test_runtime_env_ships_the_project_and_the_study(tmp_path: Path) -> None:
    profile = load_profile(ROOT / "clusters/aws-gpu.yaml")
    text = "".join(
        line
        for line in (STUDIES / "gan_stability.yaml").read_text().splitlines(True)
        if not line.startswith("resources:")
    )
    study = _write(tmp_path, "mine.yaml", text)
    env = runtime_env(str(study), profile)
    assert env["working_dir"] == str(ROOT) and {"/.venv", "/results", "/.git"} <= set(EXCLUDES)
    assert env["env_vars"]["PYTHONPATH"] == "platform"
    assert env["env_vars"]["GENBENCH_STUDY_YAML"] == text  # unchanged: errors on the cluster name the same lines
    record = json.loads(env["env_vars"]["GENBENCH_CLUSTER"])  # the profile travels beside it, whole
    assert Profile.from_record(record) == dataclasses.replace(
        profile, storage="", address="", python="python", pip=[], env={}, source="aws-gpu.yaml"
    )
    assert record["trial_resources"] == {"cpus_per_trial": 1} and record["max_nodes"] == 8
    assert entrypoint(str(study), profile, "s3://b/x", True) == (
        "$HOME/venv/bin/python -m genbench.cluster.remote mine.yaml --out s3://b/x --dry-run"
    )


def test_the_kuberay_profile_states_the_worker_groups_limit_and_the_rayjob_names_it() -> None:
    """max_nodes is how far trials queue for the autoscaler; the RayJob's entrypoint loads the profile beside it."""
    import yaml

    profile = load_profile(ROOT / "clusters/kuberay/genbench.yaml")
    for name, spec in (("raycluster.yaml", "spec"), ("rayjob.yaml", "rayClusterSpec")):
        manifest = yaml.safe_load((ROOT / "clusters/kuberay" / name).read_text())
        groups = (manifest["spec"] if spec == "spec" else manifest["spec"][spec])["workerGroupSpecs"]
        assert sum(g["maxReplicas"] for g in groups) == profile.max_nodes, name
    entry = shlex.split(yaml.safe_load((ROOT / "clusters/kuberay/rayjob.yaml").read_text())["spec"]["entrypoint"])
    assert (ROOT / entry[entry.index("--cluster") + 1]).is_file()
    assert resolve_study(entry[entry.index("genbench.cluster.remote") + 1]) == str(STUDIES / "gan_stability.yaml")
    assert load_profile(ROOT / "clusters/aws-gpu.yaml").max_nodes == 8  # a launcher file's max_workers
    assert load_profile(ROOT / "clusters/local.yaml").max_nodes == 0  # this machine does not grow


def test_a_job_takes_the_profile_it_carries_else_the_cluster_file_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """`submit` ships the profile in the job's environment; a KubeRay RayJob names the file in its image."""
    from genbench.cluster.remote import CLUSTER_ENV, job_profile

    monkeypatch.delenv(CLUSTER_ENV, raising=False)
    kuberay = job_profile(str(ROOT / "clusters/kuberay/genbench.yaml"))
    assert (kuberay.name, kuberay.max_nodes, kuberay.trial_resources) == ("kuberay-gpu", 8, {"cpus_per_trial": 1})
    assert job_profile(None) is None
    monkeypatch.setenv(CLUSTER_ENV, json.dumps(load_profile(ROOT / "clusters/aws-gpu.yaml").record()))
    carried = job_profile(str(ROOT / "clusters/kuberay/genbench.yaml"))
    assert (carried.name, carried.price_per_node_hour, carried.gpus_per_node) == ("aws-gpu", 1.006, 1)
