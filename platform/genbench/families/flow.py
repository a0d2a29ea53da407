"""Normalizing-flow family: RealNVP affine couplings with ActNorm and Glow's 1x1 convolutions, exact likelihood."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families.base import Autocast, Parts, chunk_rows, map_bytes, map_rows
from genbench.families.configs.flow import FlowConfig
from genbench.families.steps import Horizon, eval_mode, lr_schedule, optimiser, optimiser_step
from genbench.nets.coupling import MultiScaleFlow, vector_flow

LOG_2PI = math.log(2 * math.pi)
Uniform = Callable[[torch.Tensor], torch.Tensor]  # x -> uniform [0, 1) noise shaped as x (torch.rand_like)


def standard_normal_logp(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) of each row of z (..., B, D): (..., B)."""
    return -0.5 * (z.pow(2).sum(dim=-1) + z.shape[-1] * LOG_2PI)


def halvings(n: int) -> int:
    """How many times n halves exactly (its number of factors of 2)."""
    return (n & -n).bit_length() - 1


class Flow:
    """Trains by maximum likelihood; samples by one inverse pass; scores data exactly (vectors, continuous
    images) or with the uniform-dequantisation bound (discrete images)."""

    batches_per_step = 1
    sample_nfe = 1  # one pass through the inverse flow per sample
    sampler = "inverse flow pass"

    def __init__(self, cfg: RunConfig, data: Dataset) -> None:
        m, o = cfg.model, cfg.optim
        self.cfg, self.dim, self.is_image = m, data.dim, data.is_image
        self.levels = data.levels if data.is_image else None  # None: continuous values, no dequantisation
        self.flow = self._build_flow(m, data)
        # one fused kernel: the toy flow's many small tensors cost less
        self.opt = optimiser(o, self.flow.parameters(), self.decayed(), fused=True)
        self.horizon = Horizon(cfg.train.steps)  # the loop updates it under a compute budget
        self.sched = lr_schedule(self.opt, o, self.horizon)
        self.grad_clip = o.grad_clip
        self.autocast = Autocast()  # fp32 until genbench.train.device.place says otherwise
        self.nll_method = (
            "exact" if self.levels is None else "bound: uniform dequantisation (1 draw per example), exact flow density"
        )
        # examples per evaluation pass: the conditioners' maps (conv_hidden channels, or hidden units)
        self.chunk = chunk_rows(map_bytes(m.conv_hidden if data.is_image else m.hidden, data.shape))

    @staticmethod
    def _build_flow(m: FlowConfig, data: Dataset) -> nn.Module:
        if not data.is_image:
            return vector_flow(data.dim, m.couplings, m.hidden, m.depth, m.invconv)
        _, height, width = data.shape
        if height % 2**m.scales or width % 2**m.scales:
            raise ConfigError(
                f"{height}x{width} images do not halve {m.scales} times",
                key="flow.scales",
                fix=f"use flow.scales <= {halvings(math.gcd(height, width))}",
            )
        return MultiScaleFlow(data.shape, m.scales, m.couplings, m.conv_hidden, m.depth, m.invconv)

    def decayed(self) -> list[nn.Parameter]:
        """What optim.weight_decay may reach: the coupling conditioners' parameters (of those, the weights decay).
        Never ActNorm, the LU 1x1 convolutions or the coupling scales: they are the flow's own invertible maps,
        and decay would pull its Jacobian towards the identity rather than regularise a network's function."""
        return [p for name, p in self.flow.named_parameters() if ".net." in name]

    def modules(self) -> dict[str, nn.Module]:
        return {"flow": self.flow}

    def parts(self) -> Parts:
        return Parts(modules={"flow": self.flow}, optimisers={"opt": self.opt}, schedulers={"sched": self.sched})

    def _to_unit(self, x: torch.Tensor, draw: Uniform = torch.rand_like) -> torch.Tensor:
        """Uniform dequantisation of images with L levels: y = (x (L - 1) + u) / L in [0, 1)^D, u = draw(x)."""
        return (x * (self.levels - 1) + draw(x)) / self.levels

    def _preprocess(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0, 1] (..., B, C, H, W) to the flow's input and the log|det| of that map (..., B)."""
        if not self.cfg.logit:
            return y - 0.5, y.new_zeros(y.shape[:-3])
        a = self.cfg.alpha
        p = a + (1 - 2 * a) * y
        logdet = (math.log(1 - 2 * a) - p.log() - (-p).log1p()).flatten(-3).sum(dim=-1)  # d logit(p) / dy
        return p.log() - (-p).log1p(), logdet

    def _postprocess(self, v: torch.Tensor) -> torch.Tensor:
        """Inverse of _preprocess, then (discrete data) back to the levels; clamped to [0, 1]."""
        y = (torch.sigmoid(v) - self.cfg.alpha) / (1 - 2 * self.cfg.alpha) if self.cfg.logit else v + 0.5
        if self.levels is None:
            return y.clamp(0, 1)
        # floor(y L) is the level whose dequantisation cell holds y: an exact draw from the discrete model
        return (y * self.levels).floor().clamp(0, self.levels - 1) / (self.levels - 1)

    def log_density(self, v: torch.Tensor) -> torch.Tensor:
        """log p(v) of the flow's inputs (B, ...) under the flow: (B,)."""
        z, logdet = self.flow(v)
        return standard_normal_logp(z.flatten(1)) + logdet

    def dequantise(self, batch: torch.Tensor, draw: Uniform = torch.rand_like) -> torch.Tensor:
        """What the flow models: discrete images dequantised (one uniform draw per value, u = draw(batch)), else the
        batch. The batched flow (genbench.families.flow_members) draws each member's u from its own generator."""
        return self._to_unit(batch, draw) if self.is_image and self.levels is not None else batch

    def nll_under(self, log_density: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        """(..., B) nats of dequantised y (..., B, ...) under the flow density `log_density`: -log p(x) for vectors
        and continuous images; -log p(y) + D log L for discrete images. The batched flow passes its members' (S, B)."""
        if not self.is_image:
            return -log_density(y)
        v, logdet = self._preprocess(y)
        nll = -(log_density(v) + logdet)
        return nll if self.levels is None else nll + self.dim * math.log(self.levels)

    def _nll(self, y: torch.Tensor) -> torch.Tensor:
        return self.nll_under(self.log_density, y)

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with self.autocast():  # coupling conditioners in bf16; the 1x1 convs keep fp32 (InvConv1x1.forward)
            loss = self._nll(self.dequantise(batch)).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = optimiser_step(self.opt, self.grad_clip, self.sched)
        out = {"train.loss": loss.detach(), "train.grad_norm": norm}
        if self.is_image:
            out["train.bpd"] = loss.detach() / (self.dim * math.log(2))
        return out

    @torch.no_grad()
    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        """(B,) nats; the dequantisation noise of every example is drawn before the flow runs in chunks."""
        with eval_mode(self.flow):
            return map_rows(self._nll, self.dequantise(batch), self.chunk)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        param = next(self.flow.parameters())  # draw on the flow's device, in its precision
        z = torch.randn(n, self.dim, dtype=param.dtype, device=param.device)  # (n, D): every draw first
        with eval_mode(self.flow):
            v = map_rows(self.flow.inverse, z, self.chunk)
        return self._postprocess(v) if self.is_image else v
