"""GAN family on vector data: MLP generator and discriminator with every loss, penalty and norm by name."""

from __future__ import annotations

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families.base import Autocast, Parts, chunk_rows, family_device, map_bytes, map_rows
from genbench.families.configs.gan import GanConfig
from genbench.families.steps import Horizon, adamw, ema_copy, eval_mode, optimiser_step, update_ema
from genbench.gan import GAN_LOSSES, NORMS, PENALTIES
from genbench.nets.conv import ConvEncoder, ConvGenerator
from genbench.nets.dirac import DiracGenerator, LinearCritic
from genbench.nets.init import initialise
from genbench.nets.mlp import mlp


def build_nets(m: GanConfig, data: Dataset) -> tuple[nn.Module, nn.Module]:
    """MLPs for vector data; DCGAN-style conv nets for images; the Dirac-GAN's two scalars. D sees `pack` samples
    stacked on features/channels. Weights start as gan.init says."""
    if m.arch == "dirac":
        return dirac_nets(data)
    norm = NORMS.get("spectral_norm" if m.spectral_norm else "none")
    if data.is_image:
        channels, height, width = data.shape
        g: nn.Module = ConvGenerator(m.latent_dim, data.shape, m.conv_width, m.g_batch_norm)
        d: nn.Module = ConvEncoder((channels * m.pack, height, width), 1, m.conv_width, m.d_batch_norm, norm)
    else:
        g = mlp(
            m.latent_dim, data.dim, m.g_depth, m.g_width, m.g_activation or m.activation, m.maxout_k, m.g_batch_norm
        )
        d = mlp(
            data.dim * m.pack, 1, m.d_depth, m.d_width, m.d_activation or m.activation, m.maxout_k, m.d_batch_norm, norm
        )
    return initialise(g, m.init, m.init_std), initialise(d, m.init, m.init_std)


def dirac_nets(data: Dataset) -> tuple[nn.Module, nn.Module]:
    if data.is_image or data.dim != 1:
        raise ConfigError(
            f"the Dirac-GAN generates 1-D points; data {data.name!r} has shape {data.shape}",
            key="gan.arch",
            fix="use gan.arch: dirac with data.name: dirac (or another 1-D set)",
        )
    return DiracGenerator(), LinearCritic()


class GAN:
    """Alternates d_steps discriminator updates and one generator update per train_step."""

    sample_nfe = 1  # one generator pass per sample
    sampler = "generator pass"
    nll_method = None  # a GAN defines no likelihood

    def __init__(self, cfg: RunConfig, data: Dataset) -> None:
        m, o = cfg.model, cfg.optim
        self.cfg, self.image = m, data.is_image
        self.g, self.d = build_nets(m, data)
        self.loss = GAN_LOSSES.get(m.loss)()
        self.penalty = PENALTIES.get(m.penalty)
        # the shared optimiser without weight decay (the GAN's optim.* section has none), one per network
        self.opt_g = adamw(self.g.parameters(), o.lr_g, (o.beta1_g, o.beta2_g))
        self.opt_d = adamw(self.d.parameters(), o.lr_d, (o.beta1_d, o.beta2_d))
        self.g_ema = ema_copy(self.g, m.ema)
        self.horizon = Horizon(cfg.train.steps)  # no schedule reads it: the GAN's learning rates are constant
        unbounded = m.penalty == "none" and not m.spectral_norm
        self.clip = m.clip if self.loss.clip_without_penalty and unbounded else 0.0
        # PacGAN's convention draws pack x batch_size samples per network step (batch_size packed examples)
        self.batches_per_step = m.d_steps * (m.pack if m.pack_convention == "pacgan" else 1)
        self.autocast = Autocast()  # fp32 until genbench.train.device.place says otherwise
        # samples per generator pass: its widest maps have conv_width channels (images) or g_width units
        self.chunk = chunk_rows(map_bytes(m.conv_width if data.is_image else m.g_width, data.shape))

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.g, "discriminator": self.d}

    def parts(self) -> Parts:
        ema = {"g_ema": self.g_ema} if self.g_ema is not None else {}
        return Parts(modules={"g": self.g, "d": self.d, **ema}, optimisers={"opt_g": self.opt_g, "opt_d": self.opt_d})

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        # (B, D) -> (B / pack, pack * D); images (B, C, H, W) -> (B / pack, pack * C, H, W)
        return x.reshape(x.shape[0] // self.cfg.pack, -1, *x.shape[2:])

    def _fake(self, n: int, device: torch.device) -> torch.Tensor:
        out = self.g(torch.randn(n, self.cfg.latent_dim, device=device))  # (n, D) or (n, C, H, W)
        return torch.tanh(out) if self.image else out  # images live in [-1, 1] inside the GAN

    def d_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.autocast():  # forward passes, loss and penalty (its input gradient included); backward after
            real_p, fake_p = self._pack(real), self._pack(self._fake(len(real), real.device).detach())
            real_logits, fake_logits = self.d(real_p), self.d(fake_p)  # (B / pack, 1)
            loss = self.loss.d_loss(real_logits, fake_logits)
            penalty = self.penalty(self.d, real_p, fake_p)
        self.opt_d.zero_grad(set_to_none=True)
        (loss + self.cfg.penalty_weight * penalty).backward()
        norm = optimiser_step(self.opt_d)
        if self.clip:
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.clip, self.clip)
        return {
            "train.loss_d": loss.detach(),
            "train.penalty": penalty.detach(),
            "train.grad_norm_d": norm,
            "train.d_real": real_logits.detach().mean(),
            "train.d_fake": fake_logits.detach().mean(),
        }

    def g_step(self, n: int, device: torch.device) -> dict[str, torch.Tensor]:
        with self.autocast():
            loss = self.loss.g_loss(self.d(self._pack(self._fake(n, device))))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        norm = optimiser_step(self.opt_g)
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.cfg.ema)
        return {"train.loss_g": loss.detach(), "train.grad_norm_g": norm}

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.image:
            batch = batch * 2 - 1  # [0, 1] -> [-1, 1], the range of the generator's tanh
        chunks = batch.chunk(self.cfg.d_steps)  # one real batch per discriminator step
        for real in chunks:
            out = self.d_step(real)
        out.update(self.g_step(len(chunks[0]), batch.device))
        return out

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        g = self.g_ema if self.g_ema is not None else self.g
        with eval_mode(g):  # batch norm on running statistics: each sample is independent of its chunk
            out = map_rows(g, torch.randn(n, self.cfg.latent_dim, device=family_device(self)), self.chunk)
        return ((torch.tanh(out) + 1) / 2).clamp(0, 1) if self.image else out
