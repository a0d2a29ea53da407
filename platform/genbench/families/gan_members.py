"""The GAN's seeds as one batched model: S generators and discriminators (MLPs, or DCGAN conv nets on images) with a
member dimension, one step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import vmap

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.families.gan import GAN, d_scalars
from genbench.families.member_steps import Generators, member_grad_norms, noise
from genbench.families.steps import adamw, update_ema
from genbench.nets import ensemble_conv  # noqa: F401  (registers the conv layers' ensemble versions with stack)
from genbench.nets.ensemble import NotBatchable, stack, write_member

# penalty(d, real (S, B, ...), fake (S, B, ...), generators) -> (S,) unweighted: genbench.gan.penalties per member
BatchedPenalty = Callable[[nn.Module, torch.Tensor, torch.Tensor, Generators], torch.Tensor]


def input_grad_norms(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-member, per-sample norm of dD(x)/dx, kept in the graph: x (S, B, ...) -> (S, B)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)  # members do not mix: (S, B, ...)
    return grad.flatten(2).norm(dim=2)


def interpolates(real: torch.Tensor, fake: torch.Tensor, gens: Generators) -> torch.Tensor:
    """WGAN-GP's x_hat per member, each member's eps drawn from its own generator as the per-seed path draws it."""
    eps = noise(gens, torch.rand, real.shape[1], 1)  # (S, B, 1): as many draws as the per-seed (B, 1, ...)
    eps = eps.view(*eps.shape, *[1] * (real.dim() - 3))  # (S, B, 1, ...): images (S, B, 1, 1, 1)
    return eps * real + (1 - eps) * fake.detach()


PENALTIES: dict[str, BatchedPenalty] = {
    "none": lambda d, real, fake, gens: real.new_zeros(real.shape[0]),
    "gradient_penalty": lambda d, real, fake, gens: (
        (input_grad_norms(d, interpolates(real, fake, gens)) - 1).square().mean(dim=1)
    ),
    "r1": lambda d, real, fake, gens: 0.5 * input_grad_norms(d, real).square().mean(dim=1),
    "zero_gp": lambda d, real, fake, gens: input_grad_norms(d, interpolates(real, fake, gens)).square().mean(dim=1),
}


FUSED = True


class BatchedGAN:
    """S GAN members (the same configuration under S seeds) stepped together; `views[i]` is member i as a GAN.

    Built from the members' own GANs, each already initialised from its own seed, so that every member starts
    where its per-seed run starts. The loss is the sum of the members' losses: each member's gradient, Adam update,
    gradient norm, penalty, weight clipping and spectral-norm power iteration are its own."""

    @staticmethod
    def unsupported(cfg: RunConfig, data: Dataset | None) -> str:
        """Why `cfg`'s seeds cannot batch on `data` (None: not known yet); '' when they can."""
        if cfg.model.arch != "auto":
            return "the GAN batches its MLP and conv nets only (gan.arch auto), not the Dirac-GAN's scalars"
        return "" if cfg.model.penalty in PENALTIES else f"no per-member formula for gan.penalty {cfg.model.penalty!r}"

    def __init__(self, views: list[GAN], cfg: RunConfig) -> None:
        first, o = views[0], cfg.optim
        if first.cfg.arch != "auto" or first.cfg.penalty not in PENALTIES:
            raise NotBatchable(self.unsupported(cfg, None) or "the GAN batches its MLP and conv nets only")
        self.views, self.cfg, self.loss, self.clip, self.image = views, first.cfg, first.loss, first.clip, first.image
        self.penalty = PENALTIES[first.cfg.penalty]
        self.g, self.d = stack([v.g for v in views]), stack([v.d for v in views])
        self.g_ema = stack([v.g_ema for v in views if v.g_ema is not None]) if first.g_ema is not None else None
        # fused: one kernel per step for every tensor; Adam is element-wise, so each member's update is its own
        self.opt_g = adamw(self.g.parameters(), o.lr_g, (o.beta1_g, o.beta2_g), fused=FUSED)
        self.opt_d = adamw(self.d.parameters(), o.lr_d, (o.beta1_d, o.beta2_d), fused=FUSED)
        self.batches_per_step, self.autocast = first.batches_per_step, first.autocast
        self.d_loss, self.g_loss = vmap(self.loss.d_loss), vmap(self.loss.g_loss)  # (S, B, 1) logits -> (S,)

    def networks(self) -> dict[str, nn.Module]:
        """The ensemble networks by the views' part names (what write() copies back, what freezing holds)."""
        ema = {"g_ema": self.g_ema} if self.g_ema is not None else {}
        return {"g": self.g, "d": self.d, **ema}

    def write(self, i: int) -> GAN:
        """Member i as a plain GAN: its view, holding the member's current weights and buffers."""
        view = self.views[i]
        for name, net in self.networks().items():
            write_member(net, i, getattr(view, name))
        return view

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        # (S, B, D) -> (S, B / pack, pack * D); images (S, B, C, H, W) -> (S, B / pack, pack * C, H, W)
        return x.reshape(x.shape[0], x.shape[1] // self.cfg.pack, -1, *x.shape[3:])

    def _fake(self, n: int, gens: Generators) -> torch.Tensor:
        out = self.g(noise(gens, torch.randn, n, self.cfg.latent_dim))  # (S, n, D) or (S, n, C, H, W)
        return torch.tanh(out) if self.image else out  # images live in [-1, 1] inside the GAN

    def d_step(self, real: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        with self.autocast():
            real_p, fake_p = self._pack(real), self._pack(self._fake(real.shape[1], gens).detach())
            real_logits, fake_logits = self.d(real_p), self.d(fake_p)  # (S, B / pack, 1)
            loss = self.d_loss(real_logits, fake_logits)  # (S,)
            penalty = self.penalty(self.d, real_p, fake_p, gens)  # (S,)
        self.opt_d.zero_grad(set_to_none=True)
        (loss + self.cfg.penalty_weight * penalty).sum().backward()
        norm = member_grad_norms(self.d.parameters())
        self.opt_d.step()
        if self.clip:
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.clip, self.clip)
        return d_scalars(
            loss, penalty, norm, real_logits.detach().mean(dim=(1, 2)), fake_logits.detach().mean(dim=(1, 2))
        )

    def g_step(self, n: int, gens: Generators) -> dict[str, torch.Tensor]:
        with self.autocast():
            loss = self.g_loss(self.d(self._pack(self._fake(n, gens))))  # (S,)
        self.opt_g.zero_grad(set_to_none=True)
        loss.sum().backward()
        norm = member_grad_norms(self.g.parameters())
        self.opt_g.step()
        if self.g_ema is not None:
            update_ema(self.g_ema, self.g, self.cfg.ema)
        return {"train.loss_g": loss.detach(), "train.grad_norm_g": norm}

    def train_step(self, batch: torch.Tensor, gens: Generators) -> dict[str, torch.Tensor]:
        """One step of every member on its own batch (S, rows, D) or (S, rows, C, H, W); returns (S,) scalars under
        the GAN's names."""
        if self.image:
            batch = batch * 2 - 1  # [0, 1] -> [-1, 1], the range of the generator's tanh
        chunks = batch.chunk(self.cfg.d_steps, dim=1)  # one real batch per discriminator step
        for real in chunks:
            out = self.d_step(real, gens)
        out.update(self.g_step(chunks[0].shape[1], gens))
        return out
