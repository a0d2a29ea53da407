"""The autoregressive family's seeds as one batched model: S MADEs (vectors) or S PixelCNNs (images), one step."""

from __future__ import annotations

import torch
from torch import nn

from genbench.chunks import split_rows
from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.autoregressive import Autoregressive, mixture_log_prob
from genbench.families.member_steps import Generators, member_grad_norms, member_optimiser
from genbench.families.steps import lr_schedule
from genbench.nets.ensemble import write_member
from genbench.nets.ensemble_conv_autoregressive import EnsemblePixelCNN
from genbench.nets.ensemble_masked import EnsembleMADE


class BatchedAutoregressive:
    """S autoregressive members (one configuration under S seeds) stepped together; `views[i]` is member i.

    On vectors the members' MADEs stack (genbench.nets.ensemble_masked), on images their PixelCNNs, each masked
    convolution one grouped convolution (genbench.nets.ensemble_conv_autoregressive). Built from the members' own
    models, each initialised from its own seed (the mixture head's data-dependent start, init_mixture_head, included),
    so every member starts where its per-seed run starts. The loss is the sum of the members' mean NLLs: each member's
    gradient, clipping (optim.grad_clip) and AdamW update are its own, and the learning-rate schedule steps as each
    member's would. The step draws no noise (the PixelCNN's data are discrete levels, never dequantised), so the
    generators go unused."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data` (None: not known yet); '' when they can: MADEs on vectors and
        PixelCNNs on images both batch, under every autoregressive setting."""
        return ""

    def __init__(self, views: list[Autoregressive], cfg: RunConfig) -> None:
        first = views[0]
        self.views, self.component, self.grad_clip = views, first.cfg.component, first.grad_clip
        ensemble = EnsemblePixelCNN if first.is_image else EnsembleMADE
        self.net: nn.Module = ensemble([v.net for v in views])
        if not first.is_image:
            self.shift = torch.stack([v.shift for v in views]).unsqueeze(1)  # (S, 1, D): the same data, so equal
            self.scale = torch.stack([v.scale for v in views]).unsqueeze(1)  # (S, 1, D)
        self.opt = member_optimiser(cfg.optim, self.net.parameters())
        # the steps the members are expected to take: the member loop's plan updates it under a compute budget, as
        # the per-seed loop updates a family's, and the schedule (a cosine's length) reads it at every step
        self.horizon = first.horizon
        self.sched = lr_schedule(self.opt, cfg.optim, self.horizon)
        self.batches_per_step, self.autocast = first.batches_per_step, first.autocast
        # a member's micro-batch shrunk S-fold, so that one batched pass holds what a per-seed pass holds
        self.chunk = max(1, first.chunk // len(views))

    def networks(self) -> dict[str, torch.nn.Module]:
        """The ensemble MADE under the views' part name (what write() copies back, what freezing holds)."""
        return {"net": self.net}

    def write(self, i: int) -> Autoregressive:
        """Member i as a plain Autoregressive: its view, holding the member's current weights."""
        write_member(self.net, i, self.views[i].net)
        return self.views[i]

    def _nll(self, batch: torch.Tensor) -> torch.Tensor:
        """Nats per example of each member, differentiable: (S, B, D) or (S, B, C, H, W) -> (S, B);
        Autoregressive._nll per member."""
        if self.views[0].is_image:
            return self._image_nll(batch)
        z = (batch - self.shift) / self.scale  # (S, B, D)
        log_p = mixture_log_prob(z, self.net(z), self.component)  # (S, B, D)
        return self.scale.log().sum(dim=2) - log_p.sum(dim=2)

    def _image_nll(self, batch: torch.Tensor) -> torch.Tensor:
        """Nats per image of each member over its sub-pixels' levels: (S, B, C, H, W) -> (S, B)."""
        first, (members, rows) = self.views[0], batch.shape[:2]
        # row-major (B, S, ...): the last grouped convolution's own layout, so that the head reads its output without
        # a copy; the head treats every sub-pixel alone, and each row's sum is its per-seed run's
        params = self.net(batch).transpose(0, 1).flatten(0, 1)  # (B * S, C, P, H, W)
        levels = (batch.transpose(0, 1) * (first.levels - 1)).round().long()  # (B, S, C, H, W)
        index = levels.flatten(0, 1).unsqueeze(2)  # (B * S, C, 1, H, W)
        log_p = first._head(params).gather(2, index)  # (B * S, C, 1, H, W)
        return -log_p.flatten(1).sum(dim=1).view(rows, members).t()  # (S, B)

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One step of every member on its own batch (S, rows, D) or (S, rows, C, H, W): each member's mean NLL, its
        gradient accumulated over micro-batches of rows as Autoregressive.train_step accumulates it; returns (S,)
        scalars."""
        self.opt.zero_grad(set_to_none=True)
        loss = batch.new_zeros(batch.shape[0])  # (S,)
        for part in split_rows(batch.transpose(0, 1), self.chunk):  # (rows', S, ...): row chunks of every member
            with self.autocast():
                share = self._nll(part.transpose(0, 1)).mean(dim=1) * (len(part) / batch.shape[1])  # (S,)
            share.sum().backward()
            loss = loss + share.detach()
        norm = member_grad_norms(self.net.parameters(), self.grad_clip)  # (S,): before clipping, as alone
        self.opt.step()
        self.sched.step()
        return {"train.loss": loss, "train.grad_norm": norm}
