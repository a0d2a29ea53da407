"""The flow's seeds as one batched model: S RealNVP flows (ActNorm, LU 1x1 maps, couplings; on images the
multi-scale flow with conv conditioners), one step."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.flow import Flow, standard_normal_logp
from genbench.families.member_steps import Generators, member_grad_norms, noise
from genbench.families.steps import Horizon, lr_schedule, stepped
from genbench.nets import ensemble_conv_flow, ensemble_flow  # noqa: F401  # register the flow's ensemble layers
from genbench.nets.ensemble import stack, write_member


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
    AdamW update (weight decay on the conditioners' weights only) and learning-rate schedule are its own. Discrete
    images are dequantised by each member's uniform noise, drawn from its own generator as its per-seed step draws
    it (one draw shaped as its batch); vectors and continuous images draw nothing."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data` (None: not known yet); '' when they can: always."""
        return ""

    def __init__(self, views: list[Flow], cfg: RunConfig) -> None:
        first, o = views[0], cfg.optim
        self.views, self.grad_clip, self.first = views, o.grad_clip, first
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
        """One step of every member on its own batch (S, rows, D) or (S, rows, C, H, W); returns (S,) scalars under
        the flow's names, as Flow.train_step's per member."""
        first = self.first
        with self.autocast():
            y = first.dequantise(batch, lambda x: noise(gens, torch.rand, *x.shape[1:]))  # u: (S, B, C, H, W)
            loss = first.nll_under(self._log_density, y).mean(dim=1)  # (S,): each member's mean NLL in nats
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        norm = member_grad_norms(stepped(self.opt), self.grad_clip)  # each member's, clipped as its run clips
        self.opt.step()
        self.sched.step()
        out = {"train.loss": loss.detach(), "train.grad_norm": norm}
        if first.is_image:
            out["train.bpd"] = loss.detach() / (first.dim * math.log(2))
        return out

    def _log_density(self, v: torch.Tensor) -> torch.Tensor:
        """Each member's log p(v) of its flow inputs (S, B, ...) under its flow: (S, B), Flow.log_density's."""
        z, logdet = self.flow(v)  # (S, B, D), (S, B)
        return standard_normal_logp(z) + logdet
