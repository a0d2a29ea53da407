"""The vector flow's seeds as one batched model: S RealNVP flows (ActNorm, LU 1x1 maps, MLP couplings), one step."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.flow import Flow, standard_normal_logp
from genbench.families.member_steps import Generators, member_grad_norms
from genbench.families.steps import Horizon, lr_schedule, stepped
from genbench.nets import ensemble_flow  # noqa: F401  # registers the flow's ensemble layers with stack()
from genbench.nets.ensemble import NotBatchable, stack, write_member

IMAGES = "the flow batches its vector flow only (MLP couplings); image flows (conv nets, squeeze) train per seed"


def conditioner_decay_groups(named: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """AdamW's groups over member-major tensors as Flow.decayed and steps.decay_groups pick them in one member: a
    coupling conditioner's (`.net.`) tensor decays when it is a weight (2 or more dimensions without the member's)."""
    named = list(named)
    decays = [".net." in name and p.dim() - 1 >= 2 for name, p in named]
    return [
        {"params": [p for (_, p), d in zip(named, decays) if d], "weight_decay": weight_decay},
        {"params": [p for (_, p), d in zip(named, decays) if not d], "weight_decay": 0.0},
    ]


class BatchedFlow:
    """S flow members (one configuration under S seeds) stepped together; `views[i]` is member i as a Flow.

    Built from the members' own flows, each initialised from its own seed; each member's ActNorm layers initialise
    from its own first batch. The loss is the sum of the members' mean NLLs: each member's gradient, clipping,
    AdamW update (weight decay on the conditioners' weights only) and learning-rate schedule are its own. Vector
    data has no dequantisation noise, so the step draws none (the generators go unused)."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data` (None: not known yet); '' when they can."""
        return IMAGES if data is not None and data.is_image else ""

    def __init__(self, views: list[Flow], cfg: RunConfig) -> None:
        first, o = views[0], cfg.optim
        if first.is_image:
            raise NotBatchable(IMAGES)
        self.views, self.grad_clip = views, o.grad_clip
        self.flow = stack([v.flow for v in views])
        # fused, as the per-seed flow's optimiser: AdamW is element-wise, so each member's update is its own
        groups = conditioner_decay_groups(self.flow.named_parameters(), o.weight_decay)
        self.opt = torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), fused=True)
        self.horizon = Horizon(cfg.train.steps)  # the member loop's plan updates it under a compute budget
        self.sched = lr_schedule(self.opt, o, self.horizon)
        self.batches_per_step, self.autocast = first.batches_per_step, first.autocast

    def networks(self) -> dict[str, nn.Module]:
        """The ensemble network by the views' part name (what write() copies back, what freezing holds)."""
        return {"flow": self.flow}

    def write(self, i: int) -> Flow:
        """Member i as a plain Flow: its view, holding the member's current parameters and ActNorm state."""
        write_member(self.flow, i, self.views[i].flow)
        return self.views[i]

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One step of every member on its own batch (S, rows, D); returns (S,) scalars under the flow's names."""
        with self.autocast():
            z, logdet = self.flow(batch)  # (S, B, D), (S, B)
            logp = standard_normal_logp(z.flatten(0, 1)).view(logdet.shape)  # (S, B)
            loss = -(logp + logdet).mean(dim=1)  # (S,): each member's mean NLL in nats
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        norm = member_grad_norms(stepped(self.opt), self.grad_clip)  # each member's, clipped as its run clips
        self.opt.step()
        self.sched.step()
        return {"train.loss": loss.detach(), "train.grad_norm": norm}
