"""The one optimiser section: the same optim.* keys and meanings in every family, its AdamW with decoupled decay on
the declared weights, the shared learning-rate schedule, and the renamed keys' errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from genbench.cli import main
from genbench.config import from_flat
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families import FAMILIES
from genbench.families.steps import Horizon, eval_mode, lr_factor, lr_schedule, optimiser_step, update_ema
from genbench.runkeys import family_keys
from genbench.sweep.spec import load_study
from test_study import BASE, _write

OPTIM_KEYS = [
    "optim.lr",
    "optim.beta1",
    "optim.beta2",
    "optim.weight_decay",
    "optim.grad_clip",
    "optim.warmup_steps",
    "optim.lr_decay",
]
ONE_SECTION = ("vae", "diffusion", "flow", "autoregressive")

# tests/test_study.py's study (tests/ is on sys.path), over vae and diffusion, searching the shared optimiser keys
TWO_FAMILIES = (
    BASE.replace("family: gan", "family: [vae, diffusion]").split("space:")[0]
    + """space:
  optim.lr: {float: [1.0e-4, 1.0e-2], log: true}
  optim.weight_decay: {float: [1.0e-4, 1.0e-1], log: true}
"""
)


def _build(family: str, data: Dataset, **flat: Any) -> Any:
    spec = FAMILIES.get(family)
    cfg = from_flat({"family": family, "data.name": data.name, **spec.debug, **flat})
    return spec.build(cfg, data)


def _declared(family: Any) -> set[int]:
    """Ids of what the family lets weight decay reach: its `decayed()`, else every parameter of its modules."""
    params = (
        family.decayed()
        if hasattr(family, "decayed")
        else [p for m in family.modules().values() for p in m.parameters()]
    )
    return {id(p) for p in params}


def _assert_decoupled(family: Any, weight_decay: float) -> None:
    """family.opt is AdamW whose decay reaches exactly the declared parameters of 2+ dimensions, decoupled: with
    zero gradients Adam's update is 0 and a decayed weight only shrinks by lr * weight_decay (Adam's L2 would
    instead move every weight by about lr, its normalised step on the decay's gradient)."""
    opt = family.opt
    assert isinstance(opt, torch.optim.AdamW)
    declared = _declared(family)
    groups = [(p, g["weight_decay"]) for g in opt.param_groups for p in g["params"]]
    every = [p for m in family.modules().values() for p in m.parameters()]
    assert sorted(id(p) for p, _ in groups) == sorted(id(p) for p in every)  # each parameter stepped once
    decays = {id(p): p.dim() >= 2 and id(p) in declared for p, _ in groups}
    assert all(wd == (weight_decay if decays[id(p)] else 0.0) for p, wd in groups)
    assert any(decays.values()) and not all(decays.values())  # weights decay; biases (at least) do not
    before = {id(p): p.detach().clone() for p, _ in groups}
    for p, _ in groups:
        p.grad = torch.zeros_like(p)
    lr_now = opt.param_groups[0]["lr"]
    opt.step()
    for p, _ in groups:
        factor = 1.0 - lr_now * weight_decay if decays[id(p)] else 1.0
        torch.testing.assert_close(p.detach(), before[id(p)] * factor)


def test_every_family_but_the_gan_lists_the_same_optimiser_keys() -> None:
    for family in ONE_SECTION:
        docs = {k.key: k.meaning for k in family_keys(family) if k.key.startswith("optim.")}
        assert list(docs) == OPTIM_KEYS
        assert docs == {k.key: k.meaning for k in family_keys("vae") if k.key.startswith("optim.")}  # one meaning
    assert "decoupled (AdamW)" in docs["optim.weight_decay"]


def test_a_study_of_two_families_searches_one_lr_and_one_weight_decay(tmp_path: Path, grid25: Dataset) -> None:
    study = load_study(_write(tmp_path, TWO_FAMILIES))
    assert {"optim.lr", "optim.weight_decay"} <= set(study.space)
    for name in study.families:  # each family's trial takes the drawn values with the same meaning
        run = {**study.example_run(study.dry_run, name), "optim.lr": 3.0e-3, "optim.weight_decay": 0.05}
        family = _build(name, grid25, **{k: v for k, v in run.items() if k not in ("family", "data.name")})
        assert family.opt.defaults["lr"] == 3.0e-3
        _assert_decoupled(family, 0.05)


@pytest.mark.parametrize(
    "name, data_name, extra",
    [
        ("vae", "digits", {"vae.likelihood": "gaussian"}),  # its (1, 8, 8) learned log-variance must not decay
        ("flow", "digits", {}),
        ("autoregressive", "grid25", {}),
        ("diffusion", "digits", {}),
    ],
)
def test_each_family_decays_only_its_declared_weights(
    name: str, data_name: str, extra: dict[str, Any], grid25: Dataset, digits: Dataset
) -> None:
    family = _build(name, grid25 if data_name == "grid25" else digits, **{"optim.weight_decay": 0.1, **extra})
    _assert_decoupled(family, 0.1)
    if name == "vae":
        head = family.decoder.head.raw_log_var
        assert head.dim() == 3 and id(head) not in _declared(family)


def test_the_gan_builds_both_optimisers_with_the_shared_helper(make_gan: Any) -> None:
    gan = make_gan({"optim.lr_g": 1.0e-4, "optim.lr_d": 4.0e-4})
    for opt, lr in ((gan.opt_g, 1.0e-4), (gan.opt_d, 4.0e-4)):
        assert isinstance(opt, torch.optim.AdamW) and opt.defaults["lr"] == lr
        assert all(g["weight_decay"] == 0.0 for g in opt.param_groups)  # no weight decay: Adam's steps exactly


def test_lr_schedule_warms_up_then_holds_or_decays_to_zero() -> None:
    assert lr_factor(0, 110, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 110, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(60, 110, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(110, 110, 10, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(500, 110, 10, "cosine") == pytest.approx(0.0, abs=1e-12)  # stays at 0 past train.steps
    assert lr_factor(60, 110, 10, "none") == lr_factor(0, 110, 0, "none") == 1.0


def test_lr_schedule_drives_the_optimiser_and_matches_torch_cosine_without_warmup() -> None:
    """What the optimiser sees step by step; with no warm-up it is torch's CosineAnnealingLR (autoregressive's
    schedule before the shared section), so that family's default runs are unchanged."""
    o = from_flat({"family": "autoregressive"}).optim
    ours = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=o.lr)
    torch_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=o.lr)
    sched, reference = lr_schedule(ours, o, Horizon(40)), torch.optim.lr_scheduler.CosineAnnealingLR(torch_opt, 40)
    for _ in range(40):
        assert ours.param_groups[0]["lr"] == pytest.approx(torch_opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        for opt, s in ((ours, sched), (torch_opt, reference)):
            opt.step()
            s.step()


def test_optimiser_step_clips_and_returns_the_norm_before_clipping() -> None:
    net = nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    for p in net.parameters():
        p.grad = torch.full_like(p, 2.0)  # 8 values of 2: total norm sqrt(32)
    norm = optimiser_step(opt, max_norm=1.0)
    assert norm.dim() == 0 and norm.item() == pytest.approx(math.sqrt(32.0))
    clipped = torch.cat([p.grad.flatten() for p in net.parameters()]).norm()
    assert clipped.item() == pytest.approx(1.0, rel=1e-5)


def test_ema_averages_parameters_and_copies_buffers() -> None:
    live, held = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        live.weight.fill_(3.0)
        live.running_mean.fill_(5.0)
    update_ema(held, live, 0.75)
    assert torch.allclose(held.weight, torch.full((2,), 1.5))  # 0.75 * 1 + 0.25 * 3
    assert torch.equal(held.running_mean, live.running_mean)


def test_eval_mode_restores_each_module_also_on_error() -> None:
    a, b = nn.Dropout(), nn.Dropout().eval()
    with pytest.raises(RuntimeError), eval_mode(a, b):
        assert not a.training and not b.training
        raise RuntimeError("inside")
    assert a.training and not b.training


@pytest.mark.parametrize(
    "old, value, new",
    [
        ("optim.cosine", False, "optim.lr_decay: none"),
        ("optim.cosine", True, "optim.lr_decay: cosine"),
        ("optim.warmup", 50, "optim.warmup_steps: 50"),
    ],
)
def test_an_old_key_in_a_run_names_its_new_name_and_value(old: str, value: Any, new: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"family": "flow", old: value}, {old: "run.json"})
    assert err.value.key == old and err.value.source == "run.json" and err.value.fix == f"write {new}"
    assert f"renamed to {new.split(':')[0]}" in str(err.value)


def test_an_old_key_in_a_study_names_the_line_and_the_entry_to_write(tmp_path: Path) -> None:
    searched = TWO_FAMILIES.replace("[vae, diffusion]", "flow").replace(
        "  optim.weight_decay:", "  optim.cosine: {choice: [true, false]}\n  optim.weight_decay:"
    )
    with pytest.raises(ConfigError) as err:
        load_study(_write(tmp_path, searched))
    assert err.value.key == "optim.cosine" and err.value.source.endswith("study.yaml:12")
    assert err.value.fix == "write optim.lr_decay: {choice: [cosine, none]}"
    fixed = TWO_FAMILIES.replace("[vae, diffusion]", "[vae, flow]").replace(
        "  train.batch_size: 64\n", "  train.batch_size: 64\n  flow: {optim.warmup: 10}\n"
    )
    with pytest.raises(ConfigError, match=r"optim\.warmup: renamed to optim\.warmup_steps.*optim\.warmup_steps: 10"):
        load_study(_write(tmp_path, fixed))


def test_an_old_key_on_the_command_line_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "flow", "--set", "optim.cosine=false", "--out", str(tmp_path / "out")]) != 0
    assert "optim.cosine: renamed to optim.lr_decay" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_old_key_of_a_family_without_the_new_one_is_just_unknown() -> None:
    with pytest.raises(ConfigError) as err:
        from_flat({"family": "gan", "optim.cosine": True})
    assert "unknown key" in str(err.value) and "renamed" not in str(err.value)
