"""The VAE's seeds as one batched model: S MLP encoders and decoders (with their Gaussian heads) with a member
dimension, one step of the beta-ELBO for every member."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.member_steps import Generators, member_grad_norms, noise
from genbench.families.steps import adamw, lr_schedule, stepped
from genbench.families.vae import LOG_2PI, VAE, Decoder, GaussianHead, kl_standard_normal, kl_weight
from genbench.nets.ensemble import NotBatchable, stack, stacks, write_member

IMAGES = "the VAE batches its MLP nets only (vector data; images train per seed)"
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


@stacks(Decoder)
class EnsembleDecoder(nn.Module):
    """S decoders: z (S, B, latent) -> each member's distribution parameters (S, B, P, *shape), and its head."""

    def __init__(self, decoders: list[Any]) -> None:
        super().__init__()
        self.net = stack([d.net for d in decoders])
        self.head: Any = stack([d.head for d in decoders])  # EnsembleGaussianHead (the heads of vector data)
        self.shape = decoders[0].shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(*z.shape[:2], self.head.params_per_value, *self.shape)

    def write(self, i: int, decoder: Any) -> None:
        write_member(self.net, i, decoder.net)
        write_member(self.head, i, decoder.head)


class BatchedVAE:
    """S VAE members (one configuration under S seeds) stepped together; `views[i]` is member i as a VAE.

    Built from the members' own VAEs, each initialised from its own seed. The loss is the sum of the members'
    beta-ELBO losses: each member's gradient, clipping, AdamW update and reparameterisation noise are its own;
    the KL warm-up and the learning-rate schedule advance with the step count, which every member shares."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data` (None: not known yet); '' when they can. The Bernoulli and
        categorical heads take images only (genbench.families.vae.resolve_likelihood)."""
        images = cfg.model.likelihood in ("bernoulli", "categorical") or (data is not None and data.is_image)
        return IMAGES if images else ""

    def __init__(self, views: list[VAE], cfg: RunConfig) -> None:
        first, o = views[0], cfg.optim
        if first.is_image or first.kind != "gaussian":
            raise NotBatchable(IMAGES)
        self.views, self.cfg, self.horizon = views, first.cfg, first.horizon
        self.encoder, self.decoder = stack([v.encoder for v in views]), EnsembleDecoder([v.decoder for v in views])
        # member-major: a weight matrix is (S, in, out), a bias (S, out); the weights that decay are the per-seed
        # run's (VAE.decayed: the networks' matrices, not the head's learned log-variance)
        nets = (self.encoder, self.decoder.net)
        decayed = [p for net in nets for p in net.parameters() if p.dim() >= 3]
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.opt = adamw(params, o.lr, (o.beta1, o.beta2), o.weight_decay, decayed, fused=FUSED)
        self.sched = lr_schedule(self.opt, o, self.horizon)
        self.grad_clip, self.steps_done = o.grad_clip, first.steps_done
        self.batches_per_step, self.autocast = first.batches_per_step, first.autocast

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
        """(recon, kl), each (S, B) nats, of x (S, B, D) at z = mu + sigma * eps, eps (S, B, Z): VAE.elbo_terms."""
        mu, log_var = self.encoder(x).chunk(2, dim=2)  # (S, B, Z) each
        z = mu + torch.exp(0.5 * log_var) * eps.to(mu.dtype)  # reparameterisation trick
        recon = -self.decoder.head.log_prob(self.decoder(z), x)
        return recon, kl_standard_normal(mu, log_var)

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One AdamW step of every member on its own batch (S, rows, D); returns (S,) scalars under the VAE's names.
        Each member's eps is drawn as its per-seed run draws it (VAE.train_step), from its own generator."""
        self.opt.zero_grad(set_to_none=True)
        eps = noise(gens, torch.randn, batch.shape[1], self.cfg.latent_dim)  # (S, B, Z)
        with self.autocast():
            recon, kl = self.elbo_terms(batch, eps)  # (S, B) each
            loss = (recon + kl_weight(self.cfg, self.steps_done, self.horizon.steps) * kl).mean(dim=1)  # (S,)
        loss.sum().backward()
        norm = member_grad_norms(stepped(self.opt), self.grad_clip)
        self.opt.step()
        self.sched.step()
        self.steps_done += 1
        recon_mean, kl_mean = recon.detach().mean(dim=1), kl.detach().mean(dim=1)
        return {
            "train.loss": loss.detach(),
            "train.elbo": -(recon_mean + kl_mean),
            "train.kl": kl_mean,
            "train.recon": recon_mean,
            "train.grad_norm": norm,
        }
