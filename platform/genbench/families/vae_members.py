"""The VAE's seeds as one batched model: S encoders and decoders (MLPs on vectors, DCGAN conv nets on images, with
their Gaussian, Bernoulli or categorical heads) with a member dimension, one step of the beta-ELBO for every member."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genbench.chunks import split_rows
from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.member_steps import Generators, member_grad_norms, noise
from genbench.families.steps import adamw, lr_schedule, stepped
from genbench.families.vae import (
    LOG_2PI,
    VAE,
    BernoulliHead,
    CategoricalHead,
    Decoder,
    GaussianHead,
    kl_standard_normal,
    kl_weight,
    step_scalars,
)
from genbench.nets import ensemble_conv  # noqa: F401  (registers the conv nets' ensemble layers: images)
from genbench.nets.ensemble import stack, stacks, write_member

FUSED = True  # one AdamW kernel for every stacked tensor (as BatchedGAN): Adam is element-wise, each member its own


@stacks(GaussianHead)
class EnsembleGaussianHead(nn.Module):
    """S Gaussian heads: log N(x; mean, diag var) per member on (S, B, P, *shape) parameters; a learned
    log-variance is an (S, *shape) parameter, each member's own."""

    def __init__(self, heads: list[Any]) -> None:
        super().__init__()
        first = heads[0]
        self.params_per_value, self.lo, self.hi = first.params_per_value, first.lo, first.hi
        learned = first.raw_log_var is not None
        self.raw_log_var = nn.Parameter(torch.stack([h.raw_log_var.detach() for h in heads])) if learned else None

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params (S, B, P, *shape), x (S, B, *shape) -> (S, B): GaussianHead.log_prob per member."""
        mean = params[:, :, 0]  # (S, B, *shape)
        raw = params[:, :, 1] if self.raw_log_var is None else self.raw_log_var.unsqueeze(1).expand_as(mean)
        log_var = self.lo + (self.hi - self.lo) * torch.sigmoid(raw)
        per_value = -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))
        return per_value.flatten(2).sum(2)

    def write(self, i: int, head: Any) -> None:
        if self.raw_log_var is not None:
            head.raw_log_var.data.copy_(self.raw_log_var[i])


@stacks(BernoulliHead)
class EnsembleBernoulliHead(nn.Module):
    """S Bernoulli heads (stateless): BernoulliHead.log_prob per member on (S, B, 1, C, H, W) logits."""

    params_per_value = 1

    def __init__(self, heads: list[Any]) -> None:
        super().__init__()

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params (S, B, 1, C, H, W), x (S, B, C, H, W) in [0, 1] -> (S, B)."""
        bce = F.binary_cross_entropy_with_logits(params[:, :, 0], x, reduction="none")
        return -bce.flatten(2).sum(2)

    def write(self, i: int, head: Any) -> None:
        """Nothing to write: the head holds no state."""


@stacks(CategoricalHead)
class EnsembleCategoricalHead(nn.Module):
    """S categorical heads (stateless): CategoricalHead.log_prob per member on (S, B, L, C, H, W) logits."""

    def __init__(self, heads: list[Any]) -> None:
        super().__init__()
        self.params_per_value = self.levels = heads[0].levels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """params (S, B, L, C, H, W), x (S, B, C, H, W) on the L levels -> (S, B)."""
        index = torch.round(x * (self.levels - 1)).long().unsqueeze(2)  # (S, B, 1, C, H, W)
        return torch.log_softmax(params, dim=2).gather(2, index).flatten(2).sum(2)

    def write(self, i: int, head: Any) -> None:
        """Nothing to write: the head holds no state."""


@stacks(Decoder)
class EnsembleDecoder(nn.Module):
    """S decoders: z (S, B, latent) -> each member's distribution parameters (S, B, P, *shape), and its head. On images
    the conv net's (S, B, P * C, H, W) output splits its channels as the per-seed Decoder's (B, P * C, H, W) does."""

    def __init__(self, decoders: list[Any]) -> None:
        super().__init__()
        self.net = stack([d.net for d in decoders])
        self.head: Any = stack([d.head for d in decoders])  # an ensemble Gaussian, Bernoulli or categorical head
        self.shape = decoders[0].shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(*z.shape[:2], self.head.params_per_value, *self.shape)

    def write(self, i: int, decoder: Any) -> None:
        write_member(self.net, i, decoder.net)
        write_member(self.head, i, decoder.head)


class BatchedVAE:
    """S VAE members (one configuration under S seeds) stepped together; `views[i]` is member i as a VAE.

    Built from the members' own VAEs, each initialised from its own seed. The loss is the sum of the members'
    beta-ELBO losses: each member's gradient, clipping, AdamW update, dequantisation and reparameterisation noise are
    its own; the KL warm-up and the learning-rate schedule advance with the step count, which every member shares."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data`; '' when they can: every likelihood on vectors and images does."""
        return ""

    def __init__(self, views: list[VAE], cfg: RunConfig) -> None:
        first, o = views[0], cfg.optim
        self.views, self.cfg, self.horizon = views, first.cfg, first.horizon
        self.is_image, self.dequant_levels, self.nll_offset = first.is_image, first.dequant_levels, first.nll_offset
        self.encoder, self.decoder = stack([v.encoder for v in views]), EnsembleDecoder([v.decoder for v in views])
        # member-major: a weight matrix is (S, in, out), a conv weight (S, out, in, k, k), a bias (S, out); the
        # weights that decay are the per-seed run's (VAE.decayed: the networks' weights, not the head's log-variance)
        nets = (self.encoder, self.decoder.net)
        decayed = [p for net in nets for p in net.parameters() if p.dim() >= 3]
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.opt = adamw(params, o.lr, (o.beta1, o.beta2), o.weight_decay, decayed, fused=FUSED)
        self.sched = lr_schedule(self.opt, o, self.horizon)
        self.grad_clip, self.steps_done = o.grad_clip, first.steps_done
        self.batches_per_step, self.autocast = first.batches_per_step, first.autocast
        # a member's micro-batch shrunk S-fold, so that one batched pass holds what a per-seed pass holds
        self.chunk = max(1, first.chunk // len(views))

    def networks(self) -> dict[str, nn.Module]:
        """The ensemble networks by the views' module names (what write() copies back, what freezing holds)."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    def write(self, i: int) -> VAE:
        """Member i as a plain VAE: its view, holding the member's current weights and step count."""
        view = self.views[i]
        for name, net in self.networks().items():
            write_member(net, i, getattr(view, name))
        view.steps_done = self.steps_done
        return view

    def elbo_terms(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(recon, kl), each (S, B) nats, of x (S, B, *shape) at z = mu + sigma * eps, eps (S, B, Z): VAE.elbo_terms."""
        mu, log_var = self.encoder(x * 2.0 - 1.0 if self.is_image else x).chunk(2, dim=2)  # (S, B, Z) each
        z = mu + torch.exp(0.5 * log_var) * eps.to(mu.dtype)  # reparameterisation trick
        recon = -self.decoder.head.log_prob(self.decoder(z), x) + self.nll_offset
        return recon, kl_standard_normal(mu, log_var)

    def _target(self, batch: torch.Tensor, gens: Generators) -> torch.Tensor:
        """VAE._target per member: the batch (S, B, *shape), or its uniform dequantisation, each member's uniform
        draw (B, *shape) from its own generator as torch.rand_like draws it in the per-seed run."""
        if not self.dequant_levels:
            return batch
        levels = self.dequant_levels
        return (batch * (levels - 1) + noise(gens, torch.rand, *batch.shape[1:])) / levels

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One AdamW step of every member on its own batch (S, rows, *shape), its gradient accumulated over row
        chunks as VAE.train_step accumulates it; returns (S,) scalars under the VAE's names. Each member's noise
        (dequantisation, then eps) is drawn in its per-seed run's order, from its own generator."""
        self.opt.zero_grad(set_to_none=True)
        target = self._target(batch, gens)  # (S, B, *shape)
        eps = noise(gens, torch.randn, batch.shape[1], self.cfg.latent_dim)  # (S, B, Z)
        parts = [
            self._elbo_backward(x.transpose(0, 1), e.transpose(0, 1), batch.shape[1])
            for x, e in zip(split_rows(target.transpose(0, 1), self.chunk), split_rows(eps.transpose(0, 1), self.chunk))
        ]  # row chunks of every member: (rows', S, ...) each
        loss, recon, kl = (torch.stack(terms).sum(dim=0) for terms in zip(*parts))  # (S,) each
        norm = member_grad_norms(stepped(self.opt), self.grad_clip)
        self.opt.step()
        self.sched.step()
        self.steps_done += 1
        return step_scalars(loss, recon, kl, norm)

    def _elbo_backward(
        self, x: torch.Tensor, eps: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backward of each member's share of x (S, b, *shape) in its batch's mean loss, z drawn with eps (S, b, Z);
        returns the (loss, recon, kl) shares, detached (S,) tensors (VAE._elbo_backward per member)."""
        share = x.shape[1] / batch_size
        with self.autocast():
            recon, kl = self.elbo_terms(x, eps)  # (S, b) each
            loss = (recon + kl_weight(self.cfg, self.steps_done, self.horizon.steps) * kl).mean(dim=1) * share
        loss.sum().backward()
        return loss.detach(), recon.detach().mean(dim=1) * share, kl.detach().mean(dim=1) * share
