"""Run keys of the diffusion family: its config sections, checks across them, its registration (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

from genbench.errors import ConfigError
from genbench.families.configs.optim import OptimConfig
from genbench.families.spec import FAMILIES, FamilySpec

SCHEDULES, SAMPLERS, VARIANCES = ("linear", "cosine"), ("ddpm", "ddim"), ("small", "large")


@dataclass
class DiffusionConfig:
    """Forward process, sampler and denoiser (flat keys 'diffusion.*'); MLP for vectors, U-Net for images."""

    timesteps: int = 1000  # T of the forward process
    schedule: str = "cosine"  # linear | cosine
    sampler: str = "ddim"  # ddpm (ancestral, T steps) | ddim (ddim_steps steps)
    # 50, not 100: on digits DDIM 50 scored FD 6.96 against 6.91 at 100 (docs/measurements/2026-11-28-bench.md,
    # case 6) at half the network evaluations, and a default digits run's evaluations fell from 17% of its time
    # to 9.2% (genbench bench).
    ddim_steps: int = 50  # sampling steps of DDIM (a sub-sequence of the T steps)
    eta: float = 0.0  # DDIM noise scale: 0 deterministic, 1 matches DDPM's posterior variance
    variance: str = "small"  # reverse variance: small = posterior beta~_t, large = beta_t (Ho et al. 2020)
    clip_x0: bool = True  # images only: clip the predicted x0 to [-1, 1] while sampling and in the bound
    mlp_width: int = 128  # units of the MLP denoiser's hidden layers (vector data)
    mlp_depth: int = 3  # hidden layers of the MLP denoiser (vector data)
    time_dim: int = 64  # width of the time embedding
    unet_channels: int = 16  # channels at full resolution; doubled at each lower one (image data)
    unet_levels: int = 2  # resolutions: 2 is 8x8 and 4x4
    unet_blocks: int = 1  # residual blocks per resolution on the way down
    dropout: float = 0.0  # dropout rate in the U-Net residual blocks
    ema: float = 0.0  # decay of the denoiser's weight average used for sampling; 0 = off
    nll_bound: bool = False  # the variational bound costs T network evaluations per example

    def __post_init__(self) -> None:
        for key, valid in (("schedule", SCHEDULES), ("sampler", SAMPLERS), ("variance", VARIANCES)):
            if getattr(self, key) not in valid:
                raise ConfigError(f"unknown {key} {getattr(self, key)!r}", key=key, fix=f"valid: {', '.join(valid)}")
        for key in ("timesteps", "ddim_steps", "mlp_width", "time_dim", "unet_channels", "unet_levels", "unet_blocks"):
            if getattr(self, key) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, key)}", key=key, fix="use a positive integer")
        self._check_ranges()

    def _check_ranges(self) -> None:
        if self.mlp_depth < 0:
            raise ConfigError(f"must be >= 0, got {self.mlp_depth}", key="mlp_depth")
        if self.sampler == "ddim" and self.ddim_steps > self.timesteps:
            raise ConfigError(
                f"{self.ddim_steps} steps exceed timesteps={self.timesteps}",
                key="ddim_steps",
                fix="DDIM takes a sub-sequence of the T steps: use ddim_steps <= timesteps",
            )
        if self.schedule == "linear" and 0.02 * 1000 / self.timesteps >= 1:
            raise ConfigError(
                f"linear betas scaled to T={self.timesteps} reach 1",
                key="timesteps",
                fix="use timesteps > 20 with the linear schedule, or the cosine schedule",
            )
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {self.eta}", key="eta", fix="0 is deterministic DDIM")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"must be in [0, 1), got {self.dropout}", key="dropout")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"must be in [0, 1), got {self.ema}", key="ema", fix="0 turns EMA off; 0.999 is typical")


@dataclass
class DiffusionOptimConfig(OptimConfig):
    """The shared optimiser section (genbench.families.configs.optim) with the denoiser's defaults."""

    lr: float = 2.0e-3
    grad_clip: float = 1.0
    warmup_steps: int = 100
    lr_decay: str = "cosine"  # the late small steps sharpen the modes


DEBUG = {
    "diffusion.timesteps": 50,
    "diffusion.ddim_steps": 10,
    "diffusion.mlp_width": 16,
    "diffusion.mlp_depth": 2,
    "diffusion.time_dim": 16,
    "diffusion.unet_channels": 8,
}
FAMILIES.register(
    "diffusion",
    "DDPM: epsilon-prediction denoiser (MLP or U-Net), linear/cosine schedules, "
    "DDPM or DDIM sampling, optional variational bound",
)(
    FamilySpec(
        "diffusion",
        "",
        DiffusionConfig,
        DiffusionOptimConfig,
        "genbench.families.diffusion:Diffusion",
        defaults={"train.steps": 6000, "train.batch_size": 256, "eval.every": 2000},
        debug=DEBUG,
        batched="genbench.families.diffusion_members:BatchedDiffusion",
    )
)
