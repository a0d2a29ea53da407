"""Where a run computes and how: the device and the GPU options (bf16, TF32, channels-last, compile), resolved
from the train.* keys in the process that trains, and applied to a family, its batches and torch's backends."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch

from genbench.config import TrainConfig
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families.base import Autocast, Family

TRAIN_SPLIT_SHARE = 0.25  # the training split is copied to the GPU once when it takes at most this share of free memory


@dataclass(frozen=True)
class Placement:
    """The resolved device and options of one run (no 'auto' left)."""

    device: torch.device
    bf16: bool = False
    tf32: bool = False
    channels_last: bool = False
    compile: bool = False

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def options(self) -> list[str]:
        names = {"bf16": "bf16 autocast", "tf32": "tf32", "channels_last": "channels_last", "compile": "compile"}
        return [text for key, text in names.items() if getattr(self, key)]

    def columns(self) -> dict[str, str]:
        """cost.device and cost.device_options of the run's row: what its cost.* figures were measured on."""
        return {"cost.device": device_name(self.device), "cost.device_options": ",".join(self.options()) or "none"}

    def describe(self) -> str:
        return f"{device_name(self.device)}; " + (", ".join(self.options()) or "fp32, no GPU options")


@dataclass(frozen=True)
class Assignment:
    """What a launcher gave the process that trains: Ray's device, its GPU share and the GPU ids it saw.

    The default is no launcher (`genbench train`): train.device decides, and a CUDA run holds its whole GPU.
    """

    device: torch.device | None = None  # the device to train on; None: train.device decides
    gpu_share: float | None = None  # GPUs held for the run (a fraction packs several on one GPU); None: see above
    visible: str | None = None  # CUDA_VISIBLE_DEVICES as the run saw it ('' none); None: read it here

    def gpus_held(self, placement: Placement) -> float:
        return self.gpu_share if self.gpu_share is not None else float(placement.cuda)

    def columns(self, placement: Placement) -> dict[str, float | str]:
        """cost.gpu_share and cost.visible_devices of the run's row: the GPU it held, and the ids it could see."""
        visible = (
            self.visible
            if self.visible is not None
            else os.environ.get("CUDA_VISIBLE_DEVICES", str(placement.device.index or 0) if placement.cuda else "")
        )
        return {"cost.gpu_share": self.gpus_held(placement), "cost.visible_devices": visible}


def device_name(device: torch.device) -> str:
    """'cpu', or 'cuda:0 (NVIDIA H200)'."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def resolve(train: TrainConfig, device: torch.device | None = None) -> Placement:
    """The run's Placement. `device` is the one a launcher assigned (Ray Train's worker device); without it,
    'auto' takes the current GPU where torch sees one. On 'auto', TF32 and channels-last are on with CUDA, bf16 off."""
    chosen = _device(train.device, device)
    cuda = chosen.type == "cuda"
    return Placement(
        device=chosen,
        # bf16 only when asked (also on CPU: CPU autocast supports it). 'auto' is off: on an H200 bf16 autocast
        # trained every family's default model slower than fp32 with TF32, at batch 256 and at 1,024 (0.71x to
        # 0.83x, docs/measurements/2026-11-28-gpu-h200.md); its casts cost more than these small networks' matmuls save.
        bf16=_decide(train.bf16, False),
        tf32=cuda and _decide(train.tf32, True),  # TF32 exists on NVIDIA GPUs only
        channels_last=_decide(train.channels_last, cuda),  # acts on 4-D tensors (image nets) only
        compile=train.compile,
    )


def _decide(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "true"


def _device(asked: str, assigned: torch.device | None) -> torch.device:
    if asked == "cpu":
        return torch.device("cpu")
    if assigned is not None:
        if asked == "cuda" and assigned.type != "cuda":
            raise ConfigError(
                "'cuda' but Ray gave this run no GPU it can use",
                key="train.device",
                fix="give the trials a GPU share (resources.gpus_per_trial, or gpus_per_worker for "
                "Ray Train workers), or set train.device=auto",
            )
        return assigned
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if asked == "cuda":
        raise ConfigError(
            f"'cuda' but torch {torch.__version__} sees no CUDA device in this process",
            key="train.device",
            fix="set train.device=auto (or cpu), or run where a GPU is visible "
            "with a CUDA build of torch (docs/gpu.md)",
        )
    return torch.device("cpu")


def apply_backends(placement: Placement) -> None:
    """TF32 on or off for this process's CUDA matmuls and convolutions. Set both ways: a reused Ray actor
    process may have run a trial with the other setting."""
    if placement.cuda:
        precision = "tf32" if placement.tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = precision
        torch.backends.cudnn.conv.fp32_precision = precision


def place(family: Family, placement: Placement) -> Family:
    """Move every module and constant tensor `family` declares (Family.parts) to the device, in channels-last where
    asked, with its training forward passes in bf16 where asked (the loop compiles the networks after the first
    step, where asked). Families are built on the CPU first, so that one seed gives the same initial weights on
    every device."""
    parts = family.parts()
    for module in parts.modules.values():
        module.to(placement.device)
        if placement.channels_last:
            module.to(memory_format=torch.channels_last)  # 4-D conv weights only; other tensors unchanged
    _move_tensors(family, parts.device_tensors, placement.device)
    family.autocast = Autocast(placement.device.type, placement.bf16)
    _check_optimisers(family, placement.device)
    return family


def _move_tensors(family: Family, names: tuple[str, ...], device: torch.device) -> None:
    """The family's constant tensors to `device`: each attribute named a tensor, or a holder with to_device."""
    for name in names:
        value = getattr(family, name)
        if isinstance(value, torch.Tensor):
            setattr(family, name, value.to(device))
        else:  # a plain holder of tensors (diffusion's Schedule)
            value.to_device(device)


def _check_optimisers(family: Family, device: torch.device) -> None:
    """The optimisers were built before the move: Module.to swaps each parameter's data in place (CPU to CUDA), so
    they still hold the moved parameters. Checked, because a conversion that made new parameters would leave them
    stepping stale CPU copies without any error."""
    for optimiser in family.parts().optimisers.values():
        for group in optimiser.param_groups:
            stale = [p.device for p in group["params"] if p.device.type != device.type]
            if stale:
                raise RuntimeError(
                    f"{type(family).__name__}: an optimiser holds parameters on {stale[0]} after the "
                    f"move to {device}; build the optimisers after placing the modules"
                )


def compile_networks(family: Family) -> None:
    """torch.compile the forward of every network of `family`, in place: state_dict keys (checkpoints), optimiser
    references and the networks' other methods (a flow's inverse) stay as they are. (nn.Module.compile() captured
    no graph here under torch 2.13.0: the modules stayed eager.)"""
    for module in family.modules().values():
        if not hasattr(module.forward, "_torchdynamo_orig_callable"):  # not compiled yet
            module.forward = torch.compile(module.forward)


def train_split_on(data: Dataset, placement: Placement) -> Dataset:
    """A copy of `data` whose training split is on the device when it fits (the loop then indexes batches there,
    with no host-to-device copy per step); otherwise the loop copies each batch. The test split stays on the CPU
    for evaluation."""
    if not placement.cuda:
        return data
    free_bytes, _ = torch.cuda.mem_get_info(placement.device)
    if data.train.numel() * data.train.element_size() > TRAIN_SPLIT_SHARE * free_bytes:
        return data
    moved = copy.copy(data)
    moved.train = data.train.to(placement.device)
    return moved


def batch_to(batch: torch.Tensor, placement: Placement) -> torch.Tensor:
    """One training batch on the device, channels-last for images where asked: (B, D) or (B, C, H, W)."""
    batch = batch.to(placement.device, non_blocking=True)  # no device sync: the step queues behind it
    if placement.channels_last and batch.dim() == 4:
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
