"""Small atomic checkpoints of a run: every stateful part the family declares (Family.parts), loop state, history."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict
from typing import Any

import torch

from genbench.atomic import replace_durably
from genbench.errors import GenbenchError
from genbench.families.base import Family, Parts
from genbench.train.loop import LoopState


def family_state(family: Family) -> dict[str, Any]:
    """State dicts of every part the family declares: modules (EMA copies included), optimisers, LR schedulers,
    counters."""
    return {name: part.state_dict() for name, part in family.parts().stateful().items()}


def load_family_state(family: Family, state: dict[str, Any], source: str = "checkpoint") -> None:
    """Restore every part the family declares from `state` (a checkpoint's "family" entry)."""
    parts = family.parts()
    absent = _check_parts(parts, state, source)
    for name, part in parts.stateful().items():
        if name not in absent:
            part.load_state_dict(state[name])


def _check_parts(parts: Parts, state: dict[str, Any], source: str) -> set[str]:
    """The counters `state` lacks (a checkpoint written before counters were saved: they restart, with a warning).
    Any other declared part it lacks, or a part it holds that is not declared, is an error: the run's config
    changed since the checkpoint was written (an EMA copy switched on, a schedule switched off)."""
    absent = {name for name in parts.counters if name not in state}
    if absent:
        warnings.warn(
            f"{source}: written before {sorted(absent)} were saved; they restart from their initial values",
            stacklevel=3,
        )
    declared = set(parts.stateful())
    missing, unknown = sorted(declared - set(state) - absent), sorted(set(state) - declared)
    if missing or unknown:
        raise GenbenchError(
            f"{source}: its parts do not match the family built from the run's config (missing: "
            f"{missing or 'none'}; not declared: {unknown or 'none'}); resume with the config it was "
            f"written with, or start the run afresh"
        )
    return absent


def save(directory: str, family: Family, loop: LoopState, history: list[dict[str, Any]]) -> None:
    """Write state.pt and history.json into `directory` (each written beside, then renamed)."""
    os.makedirs(directory, exist_ok=True)
    loop_state = asdict(loop)  # plain values and one tensor (the batch-order RNG): loadable with weights_only
    rng = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # the noise of a GPU run is drawn there
        rng["cuda_rng"] = torch.cuda.get_rng_state()
    _atomic(
        os.path.join(directory, "state.pt"),
        lambda path: torch.save({"family": family_state(family), "loop": loop_state, **rng}, path),
    )
    _atomic(os.path.join(directory, "history.json"), lambda path: _write_text(path, json.dumps(history)))


def load(directory: str, family: Family) -> tuple[LoopState, list[dict[str, Any]]]:
    """Restore the family in place; returns the loop state and the history up to the checkpoint.

    `directory` must be a checkpoint Ray Train has finished persisting: ray.train.get_checkpoint() and
    Result.checkpoint give only those (Ray 2.60 registers a checkpoint after its synchronous copy into
    storage). Ray copies the files into place without a rename, so never glob its storage for the newest.
    """
    # tensors and plain containers only; read onto the CPU (a GPU run's checkpoint loads anywhere), then
    # load_state_dict copies each tensor onto the device of the family's own (already placed) tensors
    state = torch.load(os.path.join(directory, "state.pt"), weights_only=True, map_location="cpu")
    load_family_state(family, state["family"], source=os.path.join(directory, "state.pt"))
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"])
    with open(os.path.join(directory, "history.json")) as f:
        history = json.load(f)
    return LoopState(**state["loop"]), history


def _atomic(path: str, write: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    write(tmp)
    replace_durably(tmp, path)


def _write_text(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
