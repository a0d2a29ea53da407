"""The family contract, for every registered family on toy vectors and 8x8 images: every stateful part is declared,
a checkpoint reproduces the next step bitwise, and sampler, NFE and likelihood method have their declared types."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from genbench.config import DataConfig, from_flat
from genbench.data import Dataset, load_dataset
from genbench.errors import GenbenchError
from genbench.families import FAMILIES
from genbench.families.base import Family, Parts
from genbench.train import checkpoint
from genbench.train.loop import LoopState

DATA = {"grid25": DataConfig(name="grid25", n_train=256, n_test=64), "digits": DataConfig(name="digits")}
CASES = [(family, data) for family in FAMILIES.names() for data in DATA]
# every optional part switched on: the EMA copies (the other families' parts are there at their defaults)
EVERY_PART = {"gan": {"gan.ema": 0.9}, "diffusion": {"diffusion.ema": 0.9}}
BATCH, STEPS_BEFORE = 16, 2
STATEFUL = (nn.Module, torch.optim.Optimizer, LRScheduler)


@pytest.fixture(scope="module")
def datasets() -> dict[str, Dataset]:
    return {name: load_dataset(cfg) for name, cfg in DATA.items()}


def build(family: str, data: Dataset, seed: int = 0) -> Any:
    # 100 steps planned, so that the warm-ups (the VAE's KL weight, the LR schedules) still move at step 3
    cfg = from_flat(
        {
            "family": family,
            "data.name": data.name,
            **FAMILIES.get(family).debug,
            **EVERY_PART.get(family, {}),
            "train.steps": 100,
            "train.batch_size": BATCH,
        }
    )
    torch.manual_seed(seed)
    return FAMILIES.get(family).build(cfg, data)


def reachable(value: Any, path: str, found: list[tuple[str, Any]], seen: set[int]) -> None:
    """Append (path, object) for every module, optimiser, LR scheduler and tensor reachable from `value` through
    attributes, lists, tuples, sets and dicts; modules, optimisers and schedulers are not entered."""
    if id(value) in seen or isinstance(value, (type, str, bytes, int, float)) or value is None:
        return
    seen.add(id(value))
    if isinstance(value, (*STATEFUL, torch.Tensor)):
        found.append((path, value))
        return
    if isinstance(value, dict):
        items = [(f"{path}[{key!r}]", item) for key, item in value.items()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    else:
        items = [(f"{path}.{name}", item) for name, item in getattr(value, "__dict__", {}).items()]
    for item_path, item in items:
        reachable(item, item_path, found, seen)


def undeclared(model: Family) -> list[str]:
    """Paths of what the family holds but does not declare: a module, optimiser or scheduler that is no declared part,
    a parameter of no declared module, a tensor outside the declared device tensors."""
    parts = model.parts()
    declared = {id(part) for part in parts.stateful().values()}
    params = {id(p) for module in parts.modules.values() for p in module.parameters()}
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()
    for name, value in vars(model).items():
        if name not in parts.device_tensors:  # a declared holder's tensors follow it
            reachable(value, f"family.{name}", found, seen)
    return [path for path, obj in found if id(obj) not in declared and id(obj) not in params]


@pytest.mark.parametrize("family,data", CASES)
def test_every_stateful_part_reachable_from_a_family_is_declared(
    family: str, data: str, datasets: dict[str, Dataset]
) -> None:
    model = build(family, datasets[data])
    assert undeclared(model) == []
    parts = model.parts()
    params = {id(p) for module in parts.modules.values() for p in module.parameters()}
    for name, optimiser in parts.optimisers.items():  # placement moves modules: optimisers must step theirs
        assert all(id(p) in params for group in optimiser.param_groups for p in group["params"]), name
    for name in parts.device_tensors:
        value = getattr(model, name)
        assert isinstance(value, torch.Tensor) or callable(getattr(value, "to_device", None)), name
    if family in EVERY_PART:
        assert any("ema" in name for name in parts.modules), "the EMA copy is declared"


def test_an_optimiser_kept_in_a_list_or_a_dict_is_found_undeclared(datasets: dict[str, Dataset]) -> None:
    model = build("flow", datasets["grid25"])
    extra = torch.optim.SGD(model.flow.parameters(), lr=0.1)
    model.spare = [extra]
    model.by_name = {"warm": torch.optim.lr_scheduler.LambdaLR(extra, lambda step: 1.0)}
    assert undeclared(model) == ["family.spare[0]", "family.by_name['warm']"]


def test_a_part_name_declared_twice_is_refused() -> None:
    net = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="one part name twice"):
        Parts(modules={"net": net}, optimisers={"net": torch.optim.SGD(net.parameters(), lr=0.1)})


def state_equal(a: Any, b: Any) -> bool:
    """Nested state dicts equal bitwise (tensors by torch.equal, dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(state_equal(x, y) for x, y in zip(a, b))
    return a == b


def one_step(model: Any, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, Any], torch.Tensor]:
    """The step's scalars, every declared part's state after it, and torch's RNG state after it."""
    scalars = model.train_step(batch)
    return scalars, checkpoint.family_state(model), torch.get_rng_state()


@pytest.mark.parametrize("family,data", CASES)
def test_a_checkpoint_reproduces_the_next_step_bitwise(
    family: str, data: str, datasets: dict[str, Dataset], tmp_path: Path
) -> None:
    dataset = datasets[data]
    first = build(family, dataset)
    rows = BATCH * first.batches_per_step
    batches = [dataset.train[i * rows : (i + 1) * rows] for i in range(STEPS_BEFORE + 1)]
    for batch in batches[:STEPS_BEFORE]:
        first.train_step(batch)
    checkpoint.save(str(tmp_path), first, LoopState(step=STEPS_BEFORE), [])
    expected = one_step(first, batches[-1])
    resumed = build(family, dataset, seed=1)  # other weights and another RNG state until the checkpoint loads
    checkpoint.load(str(tmp_path), resumed)
    got = one_step(resumed, batches[-1])
    assert state_equal(expected[0], got[0]), "the step's scalars"
    assert state_equal(expected[1], got[1]), "the declared parts after the step"
    assert torch.equal(expected[2], got[2]), "torch's RNG state after the step"


@pytest.mark.parametrize("family,data", CASES)
def test_sampler_nfe_and_likelihood_method_have_their_declared_types(
    family: str, data: str, datasets: dict[str, Dataset]
) -> None:
    model = build(family, datasets[data])
    for name in ("sampler", "sample_nfe", "nll_method"):
        declared = get_type_hints(getattr(Family, name).fget)["return"]  # the Family protocol's property
        assert isinstance(getattr(model, name), declared), (name, getattr(model, name), declared)
    assert model.sampler and not isinstance(model.sample_nfe, bool) and model.sample_nfe >= 1
    assert model.nll_method is None or (model.nll_method and callable(getattr(model, "nll", None)))


def test_a_checkpoint_that_does_not_match_the_family_is_refused(datasets: dict[str, Dataset], tmp_path: Path) -> None:
    with_ema = build("gan", datasets["grid25"])
    checkpoint.save(str(tmp_path), with_ema, LoopState(), [])
    cfg = from_flat({"family": "gan", **FAMILIES.get("gan").debug})  # gan.ema off: no g_ema
    without = FAMILIES.get("gan").build(cfg, datasets["grid25"])
    with pytest.raises(GenbenchError, match=r"state\.pt: .*not declared: \['g_ema'\].*start the run afresh"):
        checkpoint.load(str(tmp_path), without)


def test_a_checkpoint_from_before_the_counters_loads_with_a_warning(datasets: dict[str, Dataset]) -> None:
    vae = build("vae", datasets["grid25"])
    vae.train_step(datasets["grid25"].train[:BATCH])
    state = checkpoint.family_state(vae)
    old = {name: part for name, part in state.items() if name != "counters"}  # the keys before the declaration
    fresh = build("vae", datasets["grid25"], seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint.load_family_state(fresh, old)
    assert any("['counters']" in str(w.message) for w in caught) and fresh.steps_done == 0
    assert state_equal(checkpoint.family_state(fresh)["encoder"], state["encoder"])
