"""Device and GPU options (train.device, bf16, tf32, channels_last, compile): resolution, errors, every family on CPU
with the options forced on, and on CUDA where a GPU exists; the prepared GPU check script at CPU size."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from genbench.cli import main
from genbench.config import TrainConfig, from_flat, to_flat
from genbench.data import load_dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.train.device import Placement, batch_to, place, resolve
from genbench.train.evaluate import likelihood
from genbench.train.run import run

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
DATA = {"grid25": {"data.n_train": 1000, "data.n_test": 200}, "digits": {}}
CASES = [(family, data) for family in FAMILIES.names() for data in DATA]
LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def _flat(family: str, data: str, **options: Any) -> dict[str, Any]:
    return {
        "family": family,
        "data.name": data,
        **DATA[data],
        **FAMILIES.get(family).debug,
        "train.batch_size": 32,
        "train.steps": 3,
        "train.log_every": 3,
        "eval.every": 3,
        "eval.n_samples": 64,
        **{f"train.{k}": v for k, v in options.items()},
    }


def _placed(family: str, data: str, placement: Placement) -> tuple[Any, Any]:
    cfg = from_flat(_flat(family, data))
    torch.manual_seed(0)
    dataset = load_dataset(cfg.data)
    return place(FAMILIES.get(family).build(cfg, dataset), placement), dataset


class LayerDtypes:
    """The output dtype of every linear / conv layer call of a family, recorded by forward hooks until close()."""

    def __init__(self, model: Any) -> None:
        self.seen: list[torch.dtype] = []
        self.handles = [
            m.register_forward_hook(lambda mod, inp, out: self.seen.append(out.dtype))
            for net in model.modules().values()
            for m in net.modules()
            if isinstance(m, LAYERS)
        ]

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _steps_are_finite(model: Any, dataset: Any, placement: Placement, steps: int = 2) -> None:
    for _ in range(steps):
        batch = batch_to(dataset.train[: 32 * model.batches_per_step], placement)
        out = model.train_step(batch)
    assert any(".loss" in k for k in out)
    for key, value in out.items():
        assert torch.isfinite(value.float()), (key, value)


# ---- resolution and bad values ------------------------------------------------------------------------------


@pytest.mark.skipif(CUDA, reason="checks what 'auto' means on a machine without a GPU")
def test_auto_is_the_cpu_with_every_option_off_here() -> None:
    placement = resolve(TrainConfig())
    assert placement == Placement(torch.device("cpu"))
    assert placement.columns() == {"cost.device": "cpu", "cost.device_options": "none"}


def test_auto_on_an_assigned_gpu_is_tf32_and_channels_last_without_bf16() -> None:
    placement = resolve(TrainConfig(), device=torch.device("cuda", 0))  # as a Ray Train worker is given its GPU
    assert placement.cuda and (placement.bf16, placement.tf32, placement.channels_last) == (False, True, True)
    assert resolve(TrainConfig(bf16="true"), device=torch.device("cuda", 0)).bf16


def test_forced_options_resolve_on_cpu_except_tf32() -> None:
    train = TrainConfig(device="cpu", bf16="true", tf32="true", channels_last="true", compile=True)
    placement = resolve(train)
    assert (placement.bf16, placement.tf32, placement.channels_last, placement.compile) == (True, False, True, True)
    assert placement.columns()["cost.device_options"] == "bf16 autocast,channels_last,compile"


def test_switches_take_yaml_bools_and_round_trip_as_strings() -> None:
    cfg = from_flat({"family": "gan", "train.bf16": True, "train.tf32": False, "train.channels_last": "AUTO"})
    assert (cfg.train.bf16, cfg.train.tf32, cfg.train.channels_last) == ("true", "false", "auto")
    flat = to_flat(cfg)
    assert flat["train.device"] == "auto" and flat["train.compile"] is False
    assert from_flat(flat) == cfg


@pytest.mark.parametrize(
    "key,value",
    [
        ("train.device", "gpu"),
        ("train.device", True),
        ("train.bf16", "yes"),
        ("train.bf16", 1),
        ("train.tf32", "maybe"),
        ("train.channels_last", 0.5),
        ("train.compile", "auto"),
    ],
)
def test_bad_values_are_one_config_error_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"family": "vae", key: value})
    assert str(err.value).startswith(f"{key}: ") and "(" in str(err.value)  # the key, then the fix in brackets


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line_naming_the_key_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(ConfigError, match=r"train\.device: 'cuda' .*train\.device=auto"):
        run(_flat("gan", "grid25", device="cuda"))
    out = tmp_path / "run"
    assert main(["train", "gan", "--set", "train.device=cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genbench: error: train.device:") and "Traceback" not in err[0]
    assert not out.exists()  # nothing written (or moved aside) for a run that cannot start


def test_ray_train_asking_for_cuda_without_gpus_fails_before_ray_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from genbench.train.ray_worker import Workers, run_distributed

    with pytest.raises(ConfigError, match=r"train\.device: .*--gpus-per-worker"):
        run_distributed(_flat("gan", "grid25", device="cuda"), Workers(count=2, gpus=0), "/nonexistent")
    out = tmp_path / "run"
    assert main(["train", "gan", "--workers", "2", "--set", "train.device=cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gpus-per-worker" in err[0] and not out.exists()


# ---- every family on CPU with the options forced on -----------------------------------------------------------


@pytest.mark.parametrize("family,data", CASES)
def test_bf16_autocast_trains_every_family_and_never_scores_likelihood_in_bf16(family: str, data: str) -> None:
    placement = Placement(torch.device("cpu"), bf16=True)
    model, dataset = _placed(family, data, placement)
    dtypes = LayerDtypes(model)
    _steps_are_finite(model, dataset, placement)
    assert torch.bfloat16 in dtypes.seen, "training forward passes ran in bf16"
    dtypes.seen.clear()
    scored = likelihood(model, dataset)
    samples = model.sample(8)
    dtypes.close()
    assert dtypes.seen and torch.bfloat16 not in dtypes.seen, "likelihood and sampling stay fp32"
    assert samples.dtype == torch.float32 and torch.isfinite(samples).all()
    assert all(math.isfinite(v) for k, v in scored.items() if k in ("likelihood.nll", "likelihood.bpd"))


@pytest.mark.parametrize("family", FAMILIES.names())
def test_channels_last_trains_every_image_family(family: str) -> None:
    placement = Placement(torch.device("cpu"), channels_last=True)
    model, dataset = _placed(family, "digits", placement)
    kernels = [p for net in model.modules().values() for p in net.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert kernels and all(p.is_contiguous(memory_format=torch.channels_last) for p in kernels)
    assert batch_to(dataset.train[:4], placement).is_contiguous(memory_format=torch.channels_last)
    _steps_are_finite(model, dataset, placement)


def test_placing_refuses_optimisers_left_holding_unmoved_parameters() -> None:
    # CPU -> CUDA moves parameter data in place, so optimisers built before the move follow it; a conversion that
    # makes new parameter objects (here: to the meta device) must fail loudly instead of stepping stale copies
    with pytest.raises(RuntimeError, match="optimiser holds parameters on cpu after the move to meta"):
        _placed("gan", "grid25", Placement(torch.device("meta")))


def test_a_run_records_its_device_and_options_in_the_row() -> None:
    row = run(_flat("flow", "digits", device="cpu", bf16=True, channels_last=True))  # forced: auto is CUDA on a GPU
    assert row["status"] == "completed", row.get("error")
    assert row["cost.device"] == "cpu" and row["cost.device_options"] == "bf16 autocast,channels_last"
    assert math.isfinite(row["likelihood.bpd"]) and row["cost.device_s"] > 0


def _train_compiled(family: str) -> float:
    """Three steps of a tiny family with train.compile on; asserts that dynamo captured graphs. Returns seconds."""
    from torch._dynamo.utils import counters

    from genbench.train.loop import train

    placement = Placement(torch.device("cpu"), compile=True)
    model, dataset = _placed(family, "grid25", placement)
    cfg = from_flat({**_flat(family, "grid25"), "train.steps": 3, "train.log_every": 1})
    graphs, losses = counters["stats"]["unique_graphs"], []
    start = time.perf_counter()
    outcome = train(
        model, dataset, cfg, lambda step, values: losses.append(values["train.loss"]), lambda f: {}, placement=placement
    )
    assert outcome.status == "completed" and outcome.step_flops > 0  # FLOPs counted on the eager first step
    assert counters["stats"]["unique_graphs"] > graphs, "dynamo captured the networks' forward passes"
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    return time.perf_counter() - start


def test_compile_switch_captures_the_networks_after_the_counted_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: real(fn, backend="eager"))  # dynamo, no codegen
    _train_compiled("vae")


@pytest.mark.skipif(
    not os.environ.get("GENBENCH_TEST_COMPILE"),
    reason="inductor takes 10-30 s to compile even the VAE's two small MLPs on this 2-core CPU "
    "(measured); set GENBENCH_TEST_COMPILE=1 to run it",
)
@pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None, reason="torch.compile on CPU needs a C++ compiler"
)
def test_compile_switch_with_inductor_on_cpu() -> None:
    print(f"compiled VAE steps: {_train_compiled('vae'):.1f} s")


# ---- the prepared GPU check, at CPU size ------------------------------------------------------------------------


def test_gpu_check_script_runs_every_family_on_cpu(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "gpu_check.json"
    code = script.main(
        [
            "--device",
            "cpu",
            "--steps",
            "5",
            "--log-every",
            "2",
            "--debug-size",
            "--bf16",
            "true",
            "--batch",
            "16",
            "--sample-n",
            "16",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == 0 and report["device"] == "cpu" and report["options"] == "bf16 autocast"
    assert [r["family"] for r in report["families"]] == FAMILIES.names()
    for r in report["families"]:
        assert r["ok"] and r["steps"] == 5 and r["train_samples_per_s"] > 0 and r["peak_mem_bytes"] > 0, r
        assert r["final_losses"] and all(math.isfinite(v) for v in r["final_losses"].values())
    assert "train samples/s" in capsys.readouterr().out


# ---- CUDA (skipped without a GPU) -------------------------------------------------------------------------------


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("family,data", CASES)
def test_every_family_trains_on_cuda_with_bf16(family: str, data: str) -> None:
    row = run(_flat(family, data, device="cuda", bf16=True))
    assert row["status"] == "completed", row.get("error")
    assert row["cost.device"].startswith("cuda:") and "bf16 autocast" in row["cost.device_options"]
    assert "tf32" in row["cost.device_options"] and row["cost.peak_mem_bytes"] > 0


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("family", FAMILIES.names())
def test_a_cuda_checkpoint_loads_into_a_cpu_family(family: str, tmp_path: Path) -> None:
    from genbench.train import checkpoint
    from genbench.train.loop import LoopState

    on_gpu, dataset = _placed(family, "digits", Placement(torch.device("cuda"), bf16=True, channels_last=True))
    _steps_are_finite(on_gpu, dataset, Placement(torch.device("cuda"), bf16=True, channels_last=True))
    checkpoint.save(str(tmp_path), on_gpu, LoopState(step=2), [])
    on_cpu, _ = _placed(family, "digits", Placement(torch.device("cpu")))
    checkpoint.load(str(tmp_path), on_cpu)
    for name, net in on_gpu.modules().items():
        for a, b in zip(net.state_dict().values(), on_cpu.modules()[name].state_dict().values()):
            assert b.device.type == "cpu" and torch.equal(a.cpu(), b)


def test_gpu_members_check_script_runs_on_cpu(tmp_path: Path) -> None:
    """The prepared GPU check of batched seeds, at CPU size: one member alone and two batched, for the GAN."""
    spec = importlib.util.spec_from_file_location("gpu_members_check", ROOT / "scripts" / "gpu_members_check.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "gpu_members.json"
    args = ["--device", "cpu", "--steps", "1", "--rounds", "1", "--members", "2", "--families", "gan"]
    assert script.main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    (gan,) = report["results"]
    assert report["device"] == "cpu" and gan["family"] == "gan" and gan["one_member_steps_per_s"] > 0
    assert gan["batched"]["2"]["member_steps_per_s"] > 0 and len(gan["seconds"]["S=2"]) == 1
