"""VAE family (Kingma & Welling 2014): Gaussian encoder, beta-weighted ELBO, IWAE likelihood bound (Burda 2016)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families.base import Autocast, Counters, Parts, chunk_rows, draw_categorical, map_rows, split_rows
from genbench.families.configs.vae import VaeConfig
from genbench.families.steps import Horizon, eval_mode, lr_schedule, optimiser, optimiser_step
from genbench.nets.conv import ConvEncoder, ConvGenerator
from genbench.nets.mlp import mlp

LOG_2PI = math.log(2 * math.pi)


class GaussianHead(nn.Module):
    """N(x; mean, diag var) per value; log-variance predicted (2 params per value) or one learned per value.

    The log-variance is squashed smoothly into [min_log_var, max_log_var] so that the density cannot
    collapse onto a point (NLL -> -inf) or flatten without bound.
    """

    def __init__(self, shape: tuple[int, ...], predicted: bool, min_log_var: float, max_log_var: float) -> None:
        super().__init__()
        self.params_per_value = 2 if predicted else 1
        self.lo, self.hi = min_log_var, max_log_var
        self.raw_log_var = None if predicted else nn.Parameter(torch.zeros(shape))

    def mean_log_var(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = params[:, 1] if self.raw_log_var is None else self.raw_log_var.expand_as(params[:, 0])
        return params[:, 0], self.lo + (self.hi - self.lo) * torch.sigmoid(raw)  # (B, *shape) each

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, log_var = self.mean_log_var(params)
        per_value = -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))
        return per_value.flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params[:, 0]

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        mean, log_var = self.mean_log_var(params)
        return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)


class BernoulliHead(nn.Module):
    """Bernoulli(x; sigmoid(logit)) per value, evaluated on intensities in [0, 1] (cross-entropy, not a density)."""

    params_per_value = 1

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(params[:, 0], x, reduction="none")
        return -bce.flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params[:, 0])

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        """Draws in {0, 1}, NaN where the probability is NaN (torch.bernoulli raises on it: a diverged decoder)."""
        p = self.mean(params)
        return torch.bernoulli(p.nan_to_num(0.5)).masked_fill(p.isnan(), math.nan)


class CategoricalHead(nn.Module):
    """A categorical over the L intensity levels of each value: an exact likelihood of discrete images."""

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.params_per_value = self.levels = levels

    def probs(self, params: torch.Tensor) -> torch.Tensor:
        return torch.softmax(params, dim=1)  # (B, L, *shape), sums to 1 over dim 1

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        index = torch.round(x * (self.levels - 1)).long().unsqueeze(1)  # (B, 1, *shape)
        return torch.log_softmax(params, dim=1).gather(1, index).flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        values = torch.linspace(0.0, 1.0, self.levels, device=params.device)
        return torch.tensordot(self.probs(params), values, dims=([1], [0]))  # (B, *shape)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        index, bad = draw_categorical(params.movedim(1, -1))  # (B, *shape) each, from logits (B, *shape, L)
        return (index.float() / (self.levels - 1)).masked_fill(bad, math.nan)  # NaN: a diverged decoder


class Decoder(nn.Module):
    """z (B, latent) -> the decoder distribution's parameters (B, P, *shape), with its likelihood head."""

    def __init__(self, net: nn.Module, head: nn.Module, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net, self.head, self.shape = net, head, shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), self.head.params_per_value, *self.shape)


def resolve_likelihood(name: str, data: Dataset) -> str:
    """The decoder likelihood for this data: 'auto' picks gaussian for vectors, categorical for discrete images."""
    if name == "auto":
        return "categorical" if data.is_image and data.levels else "gaussian"
    if name in ("bernoulli", "categorical") and not data.is_image:
        raise ConfigError(
            f"'{name}' needs image data in [0, 1], got vectors of '{data.name}'",
            key="vae.likelihood",
            fix="use gaussian (or auto) for vector data",
        )
    if name == "categorical" and not data.levels:
        raise ConfigError(
            f"'categorical' needs discrete levels; '{data.name}' has none",
            key="vae.likelihood",
            fix="use gaussian for continuous images",
        )
    return name


def make_head(kind: str, m: VaeConfig, data: Dataset) -> nn.Module:
    if kind == "gaussian":
        return GaussianHead(data.shape, m.decoder_var == "predicted", m.min_log_var, m.max_log_var)
    return BernoulliHead() if kind == "bernoulli" else CategoricalHead(int(data.levels))


def make_nets(m: VaeConfig, data: Dataset, params_per_value: int) -> tuple[nn.Module, nn.Module]:
    """(encoder x -> (mu, log_var) stacked, decoder net z -> P params per value): MLPs for vectors, convs for images."""
    if data.is_image:
        channels, height, width = data.shape
        encoder = ConvEncoder(data.shape, 2 * m.latent_dim, m.conv_width)
        decoder = ConvGenerator(
            m.latent_dim, (params_per_value * channels, height, width), m.conv_width, batch_norm=False
        )
        return encoder, decoder
    encoder = mlp(data.dim, 2 * m.latent_dim, m.depth, m.width, m.activation)
    decoder = mlp(m.latent_dim, params_per_value * data.dim, m.depth, m.width, m.activation)
    return encoder, decoder


def describe(kind: str, data: Dataset, k: int) -> str:
    """nll_method: what likelihood.nll is, honestly."""
    if kind == "bernoulli":
        what = f"the {data.levels}-level data" if data.levels else "continuous intensities"
        return f"not a likelihood of {what}: IWAE k={k} of a Bernoulli decoder's cross-entropy on [0, 1] intensities"
    if kind == "categorical":
        return f"bound: IWAE k={k} (categorical decoder over {data.levels} levels)"
    if data.is_image and data.levels:
        return f"bound: IWAE k={k} (Gaussian decoder on uniformly dequantised values, + D log {data.levels})"
    return f"bound: IWAE k={k} (Gaussian decoder)"


def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(log_var)) || N(0, I)) per example, in closed form: (..., Z) -> (...)."""
    return 0.5 * (mu**2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)


def kl_weight(m: VaeConfig, steps_done: int, horizon_steps: int) -> float:
    """beta, ramped linearly from beta / warmup at the first step to beta after the warm-up steps (a fraction
    vae.kl_warmup of the run's horizon)."""
    warmup = round(m.kl_warmup * horizon_steps)
    return m.beta * min(1.0, (steps_done + 1) / warmup) if warmup else m.beta


def step_scalars(
    loss: torch.Tensor, recon: torch.Tensor, kl: torch.Tensor, norm: torch.Tensor
) -> dict[str, torch.Tensor]:
    """A training step's `train.*` scalars: 0-dim for one run, (S,) for a batched model's members."""
    return {
        "train.loss": loss,
        "train.elbo": -(recon + kl),
        "train.kl": kl,
        "train.recon": recon,
        "train.grad_norm": norm,
    }


class VAE:
    """Maximises the beta-weighted ELBO with one reparameterised sample per example; scores data by IWAE."""

    batches_per_step = 1
    sample_nfe = 1  # one decoder pass per sample
    sampler = "prior -> decoder pass"

    def __init__(self, cfg: RunConfig, data: Dataset) -> None:
        m, o = cfg.model, cfg.optim
        self.cfg, self.shape, self.is_image = m, data.shape, data.is_image
        self.kind = resolve_likelihood(m.likelihood, data)
        head = make_head(self.kind, m, data)
        encoder, decoder_net = make_nets(m, data, head.params_per_value)
        self.encoder, self.decoder = encoder, Decoder(decoder_net, head, data.shape)
        # a Gaussian on discrete images models dequantised values y = (x (L-1) + u) / L (Theis et al. 2016)
        self.dequant_levels = data.levels if self.kind == "gaussian" and data.is_image and data.levels else 0
        self.nll_offset = data.dim * math.log(self.dequant_levels) if self.dequant_levels else 0.0
        self.sample_mode = m.sample_mode if m.sample_mode != "auto" else ("mean" if data.is_image else "sample")
        self.nll_method = describe(self.kind, data, m.iwae_k)
        self.params = [p for net in (self.encoder, self.decoder) for p in net.parameters()]
        self.opt = optimiser(o, self.params, self.decayed())
        self.horizon = Horizon(cfg.train.steps)  # the loop updates it under a compute budget
        self.sched = lr_schedule(self.opt, o, self.horizon)
        self.grad_clip = o.grad_clip
        self.steps_done = 0
        self.autocast = Autocast()  # fp32 until genbench.train.device.place says otherwise
        # decoder rows per chunk: one row's output is P values per data value (256 levels x 3,072 sub-pixels of
        # a 32x32 RGB image: 3 MiB), and a batch of 256 of them would hold gigabytes
        self.chunk = chunk_rows(4.0 * head.params_per_value * data.dim)

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def parts(self) -> Parts:
        # steps_done drives the KL warm-up: a resumed run continues the ramp where it stopped
        return Parts(
            modules=self.modules(),
            optimisers={"opt": self.opt},
            schedulers={"sched": self.sched},
            counters={"counters": Counters(self, "steps_done")},
        )

    def decayed(self) -> list[nn.Parameter]:
        """What optim.weight_decay may reach: the encoder and decoder networks, not the Gaussian head's learned
        log-variance (a (C, H, W) parameter for images, but a per-value variance rather than a weight)."""
        return [*self.encoder.parameters(), *self.decoder.net.parameters()]

    def _target(self, batch: torch.Tensor) -> torch.Tensor:
        """What the decoder models: the batch itself, or its uniform dequantisation for a Gaussian on levels."""
        if not self.dequant_levels:
            return batch
        levels = self.dequant_levels
        return (batch * (levels - 1) + torch.rand_like(batch)) / levels  # (B, *shape) in [0, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x * 2.0 - 1.0 if self.is_image else x)  # images centred to [-1, 1]
        mu, log_var = h.chunk(2, dim=1)  # (B, Z) each
        return mu, log_var

    def elbo_terms(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(recon, kl), each (B,) nats: -log p(x|z) at one reparameterised z ~ q(z|x), and the analytic KL.

        eps (B, Z): the standard normal draws of z, when the caller drew them (for a whole batch, before chunks)."""
        mu, log_var = self.encode(x)
        eps = torch.randn_like(mu) if eps is None else eps.to(mu.dtype)
        z = mu + torch.exp(0.5 * log_var) * eps  # reparameterisation trick
        recon = -self.decoder.head.log_prob(self.decoder(z), x) + self.nll_offset
        return recon, kl_standard_normal(mu, log_var)

    def kl_weight(self) -> float:
        return kl_weight(self.cfg, self.steps_done, self.horizon.steps)  # read live: a budget moves the horizon

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on the batch's mean loss, its gradient accumulated over micro-batches of self.chunk rows
        (the same gradient: no layer depends on the batch); a batch that fits one chunk runs as one pass."""
        self.opt.zero_grad(set_to_none=True)
        target = self._target(batch)  # the noise of every row first (dequantisation, then z): chunks cannot change it
        eps = torch.randn(len(batch), self.cfg.latent_dim, device=batch.device)  # (B, Z)
        parts = [
            self._elbo_backward(x, e, len(batch))
            for x, e in zip(split_rows(target, self.chunk), split_rows(eps, self.chunk))
        ]
        loss, recon, kl = (torch.stack(terms).sum() for terms in zip(*parts))  # means over the whole batch
        norm = optimiser_step(self.opt, self.grad_clip, self.sched)
        self.steps_done += 1
        return step_scalars(loss, recon, kl, norm)

    def _elbo_backward(
        self, x: torch.Tensor, eps: torch.Tensor, batch_size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backward of the share of x (b, *shape) in the batch's mean loss, z drawn with eps (b, Z); returns the
        (loss, recon, kl) shares, detached 0-dim tensors."""
        share = len(x) / batch_size
        with self.autocast():  # the forward passes and the loss; backward after
            recon, kl = self.elbo_terms(x, eps)
            loss = (recon + self.kl_weight() * kl).mean() * share
        loss.backward()
        return loss.detach(), recon.detach().mean() * share, kl.detach().mean() * share

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i | x) for k draws z_i ~ q(z|x) per example: (k, B).

        Every draw is made before the decoder runs, over chunks of at most self.chunk (draw, example) rows, so
        that the value does not depend on the chunking."""
        mu, log_var = self.encode(x)
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)  # (k, B, Z)
        z = mu + torch.exp(0.5 * log_var) * eps
        log_q = -0.5 * (eps**2 + LOG_2PI + log_var).sum(-1)  # (k, B)
        log_prior = -0.5 * (z**2 + LOG_2PI).sum(-1)
        examples = split_rows(torch.arange(len(x), device=x.device), self.chunk)  # each (b,)
        draws = max(1, self.chunk // len(examples[0]))
        log_px = torch.cat(
            [torch.cat([self._log_px(z[i : i + draws, e], x[e]) for i in range(0, k, draws)]) for e in examples], dim=1
        )  # (k, B)
        return log_px + log_prior - log_q

    def _log_px(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) of z (k', b, Z) for x (b, *shape): (k', b)."""
        x_rep = x.unsqueeze(0).expand(len(z), *x.shape).flatten(0, 1)  # (k' * b, *shape)
        return self.decoder.head.log_prob(self.decoder(z.flatten(0, 1)), x_rep).view(len(z), len(x))

    @torch.no_grad()
    def iwae_nll(self, batch: torch.Tensor, k: int) -> torch.Tensor:
        """-log (1/k) sum_i w_i, the IWAE bound on -log p(x) (Burda et al. 2016): (B,)."""
        log_w = self.log_weights(self._target(batch), k)  # (k, B)
        return -(torch.logsumexp(log_w, dim=0) - math.log(k)) + self.nll_offset

    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        with eval_mode(*self.modules().values()):
            return self.iwae_nll(batch, self.cfg.iwae_k)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        with eval_mode(*self.modules().values()):
            return self._to_data(self._decode_prior(n))

    def _decode_prior(self, n: int) -> torch.Tensor:
        """n draws z ~ N(0, I) (all made first), decoded in chunks of self.chunk rows: (n, *shape)."""
        return map_rows(self._decode, torch.randn(n, self.cfg.latent_dim, device=self.params[0].device), self.chunk)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        params = self.decoder(z)  # (n, P, *shape)
        head = self.decoder.head
        return head.mean(params) if self.sample_mode == "mean" else head.sample(params)

    def _to_data(self, y: torch.Tensor) -> torch.Tensor:
        """Decoder space -> data space: dequantised values back to levels; images clamped to [0, 1]."""
        if self.dequant_levels:
            levels = self.dequant_levels
            y = (y * levels - 0.5) / (levels - 1)  # bin centres map back onto the levels k / (L - 1)
            if self.sample_mode == "sample":
                y = torch.round(y.clamp(0, 1) * (levels - 1)) / (levels - 1)
        return y.clamp(0.0, 1.0) if self.is_image else y
