"""Diffusion's seeds as one batched model: S denoisers (MLPs on vectors, U-Nets on images) with a member dimension."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.diffusion import Diffusion, q_sample
from genbench.families.member_steps import Generators, member_grad_norms, member_optimiser, noise
from genbench.families.steps import Horizon, lr_schedule, update_ema
from genbench.nets import ensemble_conv_diffusion, ensemble_time  # noqa: F401  register the denoisers with stack()
from genbench.nets.ensemble import NotBatchable, stack, write_member

DROPOUT = (
    "diffusion.dropout > 0 draws the U-Net's dropout masks from torch's global generator, which batched members "
    "cannot reproduce: such runs train per seed (set diffusion.dropout: 0 to batch them)"
)


class BatchedDiffusion:
    """S diffusion members (one configuration under S seeds) stepped together; `views[i]` is member i as a Diffusion.

    Built from the members' own Diffusions, each initialised from its own seed. Each member draws its timesteps and
    noise from its own generator as Diffusion.train_step draws them from torch's global one; the loss is the sum of
    the members' L_simple, so each member's gradient, clipping (its own norm), AdamW update, learning-rate schedule
    and EMA are its own."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data` (None: not known yet); '' when they can."""
        # data not known yet (a study's plan): the batched model refuses dropout on images, and the seeds run one by one
        return DROPOUT if data is not None and data.is_image and cfg.model.dropout > 0 else ""

    def __init__(self, views: list[Diffusion], cfg: RunConfig) -> None:
        first = views[0]
        if first.is_image and first.cfg.dropout > 0:
            raise NotBatchable(DROPOUT)
        self.views, self.cfg, self.first = views, first.cfg, first
        self.net = stack([v.net for v in views])
        self.ema_net = None if first.ema_net is None else stack([v.ema_net for v in views]).requires_grad_(False)
        self.opt = member_optimiser(cfg.optim, self.net.parameters())  # decays the weights a member alone decays
        # the member loop's plan keeps the horizon current under a compute budget, as the per-seed loop keeps a view's
        self.horizon = Horizon(first.horizon.steps)
        self.lr_sched = lr_schedule(self.opt, cfg.optim, self.horizon)
        self.grad_clip = first.grad_clip
        self.batches_per_step, self.autocast = first.batches_per_step, first.autocast

    def networks(self) -> dict[str, nn.Module]:
        """The ensemble networks by the views' part names (what write() copies back, what freezing holds)."""
        return {"net": self.net, **({"ema_net": self.ema_net} if self.ema_net is not None else {})}

    def write(self, i: int) -> Diffusion:
        """Member i as a plain Diffusion: its view, holding the member's current denoiser and EMA."""
        view = self.views[i]
        for name, net in self.networks().items():
            write_member(net, i, getattr(view, name))
        return view

    def _timesteps(self, rows: int, gens: Generators) -> torch.Tensor:
        """(S, rows) long: each member's t, as torch.randint(T, (rows,)) draws it in its per-seed run."""

        def draw(*shape: int, **where: Any) -> torch.Tensor:
            return torch.randint(self.cfg.timesteps, shape, **where)

        return noise(gens, draw, rows)

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One step of every member on its own batch (S, rows, D) or (S, rows, C, H, W); returns (S,) scalars under
        Diffusion's names."""
        x0 = self.first.to_model(batch)  # (S, B, ...): vectors standardised by the training data, images to [-1, 1]
        t = self._timesteps(x0.shape[1], gens)  # (S, B), drawn before the noise as Diffusion.train_step draws it
        eps_true = noise(gens, torch.randn, *x0.shape[1:])  # (S, B, ...): torch.randn_like(x0) per member
        xt = q_sample(self.first.sched, x0.flatten(0, 1), t.flatten(), eps_true.flatten(0, 1)).view_as(x0)
        with self.autocast():  # the denoiser in bf16 where asked; the squared error in fp32
            eps = self.first.eps(self.net, xt, t)  # (S, B, ...)
        loss = (eps.float() - eps_true).pow(2).flatten(1).mean(dim=1)  # (S,): each member's L_simple
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        norm = member_grad_norms(self.net.parameters(), self.grad_clip)  # (S,), each member clipped by its own
        self.opt.step()
        self.lr_sched.step()
        if self.ema_net is not None:
            update_ema(self.ema_net, self.net, self.cfg.ema)
        return {"train.loss": loss.detach(), "train.grad_norm": norm}
