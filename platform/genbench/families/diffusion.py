"""Diffusion family (DDPM, Ho et al. 2020): epsilon prediction, linear/cosine schedules, DDPM and DDIM samplers, VLB."""

from __future__ import annotations

import math

import torch
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families.base import Autocast, Parts, chunk_rows, family_device, map_bytes, map_rows, split_rows
from genbench.families.configs.diffusion import DiffusionConfig
from genbench.families.steps import Horizon, ema_copy, eval_mode, lr_schedule, optimiser, optimiser_step, update_ema
from genbench.nets.unet import TimeMLP, UNet

COSINE_OFFSET, MAX_BETA = 0.008, 0.999  # Nichol & Dhariwal 2021: s keeps beta_1 from vanishing; the clip avoids beta=1


def make_betas(schedule: str, timesteps: int) -> torch.Tensor:
    """beta_1..beta_T (T,) float64: linear 1e-4..0.02 scaled by 1000/T, or cosine with the 0.999 clip."""
    if schedule == "linear":
        scale = 1000.0 / timesteps  # keeps the total noise of Ho et al.'s T=1000 schedule for any T
        return torch.linspace(scale * 1e-4, scale * 0.02, timesteps, dtype=torch.float64)
    alpha_bar = cosine_alpha_bar(torch.arange(timesteps + 1, dtype=torch.float64), timesteps)  # (T + 1,)
    return (1.0 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=MAX_BETA)


def cosine_alpha_bar(t: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Nichol & Dhariwal's alpha_bar(t) = f(t) / f(0), f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)."""

    def f(u: torch.Tensor) -> torch.Tensor:
        return torch.cos((u / timesteps + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2

    return f(t) / f(torch.zeros_like(t))


class Schedule:
    """Per-step coefficients of the forward process and its posteriors, indexed by t = 0..T-1 (paper's t = 1..T)."""

    def __init__(self, schedule: str, timesteps: int, variance: str) -> None:
        betas = make_betas(schedule, timesteps)  # float64 for the products, float32 for use
        alpha_bar = torch.cumprod(1.0 - betas, dim=0)
        alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
        post_var = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)  # beta~_t; 0 at t = 1
        # Ho et al.'s code: log beta~_1 = -inf is replaced by log beta~_2; 'large' keeps beta_t for t >= 2
        post_log_var = torch.cat([post_var[1:2], post_var[1:]]).log()
        model_log_var = post_log_var if variance == "small" else torch.cat([post_var[1:2], betas[1:]]).log()
        values = {
            "betas": betas,
            "alpha_bar": alpha_bar,
            "alpha_bar_prev": alpha_bar_prev,
            "sqrt_alpha_bar": alpha_bar.sqrt(),
            "sqrt_one_minus_alpha_bar": (1.0 - alpha_bar).sqrt(),
            "sqrt_recip_alpha_bar": alpha_bar.rsqrt(),
            "sqrt_recip_m1_alpha_bar": (1.0 / alpha_bar - 1.0).sqrt(),
            "post_coef_x0": betas * alpha_bar_prev.sqrt() / (1.0 - alpha_bar),
            "post_coef_xt": (1.0 - alpha_bar_prev) * (1.0 - betas).sqrt() / (1.0 - alpha_bar),
            "post_log_var": post_log_var,
            "model_log_var": model_log_var,
        }
        self.timesteps = timesteps
        for name, value in values.items():
            setattr(self, name, value.float())

    def to_device(self, device: torch.device) -> None:
        """Every coefficient on `device` (the family's device: they are indexed by t drawn there)."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))


def at(coef: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """coef[t] (B,) shaped (B, 1, ...) to broadcast against a (B, ...) tensor of ndim dimensions."""
    return coef[t].view(-1, *([1] * (ndim - 1)))


def q_sample(sched: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I), reparameterised by eps."""
    return at(sched.sqrt_alpha_bar, t, x0.dim()) * x0 + at(sched.sqrt_one_minus_alpha_bar, t, x0.dim()) * eps


def posterior_mean(sched: Schedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Mean of q(x_{t-1} | x_t, x_0) (Ho et al. eq. 7)."""
    return at(sched.post_coef_x0, t, xt.dim()) * x0 + at(sched.post_coef_xt, t, xt.dim()) * xt


def predict_x0(sched: Schedule, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return at(sched.sqrt_recip_alpha_bar, t, xt.dim()) * xt - at(sched.sqrt_recip_m1_alpha_bar, t, xt.dim()) * eps


def gaussian_kl(
    mean1: torch.Tensor, log_var1: torch.Tensor, mean2: torch.Tensor, log_var2: torch.Tensor
) -> torch.Tensor:
    """Elementwise KL(N(mean1, var1) || N(mean2, var2)) in nats."""
    return 0.5 * (log_var2 - log_var1 - 1.0 + (log_var1 - log_var2).exp() + (mean1 - mean2) ** 2 * (-log_var2).exp())


def discretised_gaussian_log_prob(
    x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, levels: int
) -> torch.Tensor:
    """Elementwise log P(x) of Ho et al.'s decoder: N(mean, var) integrated over x's bin of L levels in [-1, 1].

    The bins are 2 / (L - 1) wide; the lowest and highest extend to -inf and +inf.
    """
    half_bin = 1.0 / (levels - 1)
    inv_std = (-0.5 * log_var).exp()
    upper = (x - mean + half_bin) * inv_std
    lower = (x - mean - half_bin) * inv_std
    log_cdf_upper = torch.special.log_ndtr(upper)  # log P(y < upper edge), used for the lowest level
    log_sf_lower = torch.special.log_ndtr(-lower)  # log P(y > lower edge), used for the highest level
    flip = lower > 0  # in the right tail, difference survival functions, which do not round to 1
    a, b = torch.where(flip, -upper, lower), torch.where(flip, -lower, upper)
    log_mid = (torch.special.ndtr(b) - torch.special.ndtr(a)).clamp(min=1e-12).log()
    return torch.where(x < -1 + half_bin, log_cdf_upper, torch.where(x > 1 - half_bin, log_sf_lower, log_mid))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, var) of a continuous decoder."""
    return -0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * (-log_var).exp())


def ddim_timesteps(timesteps: int, steps: int) -> torch.Tensor:
    """tau_i = floor(i * T / S), i = 0..S-1: S evenly spaced indices, increasing (Song et al. 2021's code).

    The sequence ends at T - T/S rather than T - 1: with the cosine schedule alpha_bar_{T-1} is ~1e-9,
    and a deterministic step from it multiplies the noise prediction's error by sqrt(alpha_bar' / alpha_bar),
    hundreds of times. With S = T it is every step, so DDIM with eta = 1 is then DDPM.
    """
    return torch.arange(steps, dtype=torch.long) * timesteps // steps


def sum_except_batch(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(dim=1)


class Diffusion:
    """A noise-predicting denoiser trained with Ho et al.'s simple loss; samples by DDPM or DDIM; optional VLB."""

    batches_per_step = 1

    def __init__(self, cfg: RunConfig, data: Dataset) -> None:
        m, o = cfg.model, cfg.optim
        self.cfg, self.shape, self.is_image, self.levels = m, data.shape, data.is_image, data.levels
        self.sched = Schedule(m.schedule, m.timesteps, m.variance)
        self.net = build_denoiser(m, data)
        self.ema_net = ema_copy(self.net, m.ema)
        self.opt = optimiser(o, self.net.parameters())
        self.horizon = Horizon(cfg.train.steps)  # the loop updates it under a compute budget
        self.lr_sched = lr_schedule(self.opt, o, self.horizon)  # not self.sched: that is the noise schedule
        self.grad_clip = o.grad_clip
        # vectors are standardised per coordinate so that unit-variance noise matches the data's scale
        self.mean = torch.zeros(data.shape) if data.is_image else data.train.mean(dim=0)  # (D,)
        self.std = torch.ones(data.shape) if data.is_image else data.train.std(dim=0).clamp(min=1e-6)  # (D,)
        self.clip = m.clip_x0 and data.is_image
        self.nll_method = self._nll_method() if m.nll_bound else None  # None: the costly bound is switched off
        self.autocast = Autocast()  # fp32 until genbench.train.device.place says otherwise
        # denoiser inputs per evaluation pass: the U-Net keeps skip maps of unet_channels at full resolution
        # (images), the MLP hidden layers of mlp_width units (vectors)
        self.chunk = chunk_rows(map_bytes(m.unet_channels if data.is_image else m.mlp_width, data.shape, live=8))

    @property
    def sample_nfe(self) -> int:
        """Network evaluations per sample: every step of the sampler calls the denoiser once."""
        return self.cfg.timesteps if self.cfg.sampler == "ddpm" else self.cfg.ddim_steps

    @property
    def sampler(self) -> str:
        return f"{self.cfg.sampler} ({self.sample_nfe} steps)"

    def modules(self) -> dict[str, nn.Module]:
        return {"denoiser": self.net}

    def parts(self) -> Parts:
        ema = {"ema_net": self.ema_net} if self.ema_net is not None else {}
        return Parts(
            modules={"net": self.net, **ema},
            optimisers={"opt": self.opt},
            schedulers={"lr_sched": self.lr_sched},
            device_tensors=("sched", "mean", "std"),
        )

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Data space -> model space: images [0, 1] -> [-1, 1]; vectors standardised."""
        return x * 2.0 - 1.0 if self.is_image else (x - self.mean) / self.std

    def to_data(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0) if self.is_image else x * self.std + self.mean

    def eps(self, net: nn.Module, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser's noise prediction for t (B,) or (1,); t is rescaled to [0, 1000) to suit the embedding."""
        return net(xt, t.float() * (1000.0 / self.cfg.timesteps))

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x0 = self.to_model(batch)  # (B, ...)
        t = torch.randint(self.cfg.timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        with self.autocast():  # the denoiser in bf16 where asked; the squared error in fp32
            eps = self.eps(self.net, q_sample(self.sched, x0, t, noise), t)
        loss = (eps.float() - noise).pow(2).mean()  # L_simple
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = optimiser_step(self.opt, self.grad_clip, self.lr_sched)
        if self.ema_net is not None:
            update_ema(self.ema_net, self.net, self.cfg.ema)
        return {"train.loss": loss.detach(), "train.grad_norm": norm}

    def sampling_net(self) -> nn.Module:
        return self.ema_net if self.ema_net is not None else self.net

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n samples in data space: (n, D), or (n, C, H, W) clamped to [0, 1]; every x_T is drawn first, then
        denoised in chunks of self.chunk (DDIM with eta = 0 draws nothing more: chunking cannot change it)."""
        x_T = torch.randn(n, *self.shape, device=family_device(self))
        return self.to_data(map_rows(self.denoise, x_T, self.chunk))

    @torch.no_grad()
    def denoise(self, x_T: torch.Tensor) -> torch.Tensor:
        """Run the configured sampler from x_T (n, ...) in model space; returns x_0 in model space."""
        net = self.sampling_net()
        with eval_mode(net):
            return self._ddpm(net, x_T) if self.cfg.sampler == "ddpm" else self._ddim(net, x_T)

    def _x0(self, net: nn.Module, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted x0, the noise consistent with it): clipping x0 for images changes the implied noise."""
        eps = self.eps(net, xt, t)
        x0 = predict_x0(self.sched, xt, t, eps)
        if not self.clip:
            return x0, eps
        x0 = x0.clamp(-1.0, 1.0)
        eps = (at(self.sched.sqrt_recip_alpha_bar, t, xt.dim()) * xt - x0) / at(
            self.sched.sqrt_recip_m1_alpha_bar, t, xt.dim()
        )
        return x0, eps

    def _ddpm(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Ancestral sampling over all T steps: x_{t-1} ~ N(mu_theta(x_t, t), sigma_t^2 I), no noise at t = 1."""
        for step in reversed(range(self.cfg.timesteps)):
            t = torch.full((1,), step, dtype=torch.long, device=x.device)  # shared by the batch: one embedding
            x0, _ = self._x0(net, x, t)
            x = posterior_mean(self.sched, x0, x, t)
            if step > 0:
                x = x + (0.5 * self.sched.model_log_var[step]).exp() * torch.randn_like(x)
        return x

    def _ddim(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """DDIM (Song et al. 2021, eq. 12) over the sub-sequence tau; eta scales the noise (0: deterministic)."""
        taus = ddim_timesteps(self.cfg.timesteps, self.cfg.ddim_steps).tolist()
        for i in reversed(range(len(taus))):
            t = torch.full((1,), taus[i], dtype=torch.long, device=x.device)
            x0, eps = self._x0(net, x, t)
            ab = self.sched.alpha_bar[taus[i]]
            ab_prev = self.sched.alpha_bar[taus[i - 1]] if i > 0 else ab.new_ones(())
            sigma = self.cfg.eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
            x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
            if self.cfg.eta > 0 and i > 0:
                x = x + sigma * torch.randn_like(x)
        return x

    def _nll_method(self) -> str:
        decoder = (
            f"discretised Gaussian decoder, {self.levels} levels"
            if self.is_image and self.levels
            else "continuous Gaussian decoder"
        )
        return f"bound: DDPM variational bound, T={self.cfg.timesteps}, {self.cfg.variance} variance, {decoder}"

    @torch.no_grad()
    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        """The variational bound L_T + sum_{t>1} L_{t-1} + L_0 in nats per example (B,), every t evaluated."""
        terms = self.bound_terms(batch)  # (B, T + 1)
        log_det = self.std.log().sum() if not self.is_image else terms.new_zeros(())  # undoes the standardisation
        return terms.sum(dim=1) + log_det

    @torch.no_grad()
    def bound_terms(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, T + 1): column t < T is L_t (t = 0 the decoder term -log p(x0|x1), else a KL); column T is L_T."""
        net = self.sampling_net()
        x0 = self.to_model(batch)  # (B, ...)
        with eval_mode(net):
            terms = torch.cat([self._timestep_terms(net, part) for part in split_rows(x0, self.chunk)])  # (B, T)
        return torch.cat([terms, self.prior_term(x0)[:, None]], dim=1)

    def _timestep_terms(self, net: nn.Module, x0: torch.Tensor) -> torch.Tensor:
        """L_0 .. L_{T-1} of x0 (b, ...) in model space: (b, T), over chunks of timesteps of self.chunk rows."""
        steps = torch.arange(self.cfg.timesteps, device=x0.device)
        return torch.cat([self._terms_at(net, x0, ts) for ts in steps.split(max(1, self.chunk // len(x0)))], dim=1)

    def prior_term(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T = KL(q(x_T | x_0) || N(0, I)) per example (B,)."""
        t = torch.full((len(x0),), self.cfg.timesteps - 1, dtype=torch.long, device=x0.device)
        mean = at(self.sched.sqrt_alpha_bar, t, x0.dim()) * x0
        log_var = at((1.0 - self.sched.alpha_bar).log(), t, x0.dim()).expand_as(x0)
        return sum_except_batch(gaussian_kl(mean, log_var, torch.zeros_like(x0), torch.zeros_like(x0)))

    def _terms_at(self, net: nn.Module, x0: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
        """Bound terms of every example at each timestep of ts (k,): (B, k), one x_t ~ q(x_t | x_0) each."""
        b, k = len(x0), len(ts)
        x0_rep = x0.repeat(k, *([1] * (x0.dim() - 1)))  # (k * B, ...): timestep-major
        t = ts.repeat_interleave(b)  # (k * B,)
        xt = q_sample(self.sched, x0_rep, t, torch.randn_like(x0_rep))
        x0_pred, _ = self._x0(net, xt, t)
        mean = posterior_mean(self.sched, x0_pred, xt, t)
        log_var = at(self.sched.model_log_var, t, xt.dim()).expand_as(xt)
        kl = gaussian_kl(
            posterior_mean(self.sched, x0_rep, xt, t),
            at(self.sched.post_log_var, t, xt.dim()).expand_as(xt),
            mean,
            log_var,
        )
        decoder = -self._decoder_log_prob(x0_rep, mean, log_var)
        first = (t == 0).view(-1, *([1] * (xt.dim() - 1)))  # the paper's t = 1 has the decoder term
        per_elem = torch.where(first, decoder, kl)  # (k * B, ...)
        return sum_except_batch(per_elem).view(k, b).T

    def _decoder_log_prob(self, x0: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        if self.is_image and self.levels:
            return discretised_gaussian_log_prob(x0, mean, log_var, self.levels)
        return gaussian_log_prob(x0, mean, log_var)


def build_denoiser(m: DiffusionConfig, data: Dataset) -> nn.Module:
    """A U-Net for images (C, H, W), an MLP with time embedding for vectors (D,)."""
    if not data.is_image:
        return TimeMLP(data.dim, m.mlp_width, m.mlp_depth, m.time_dim)
    size = data.shape[1]
    if size % 2 ** (m.unet_levels - 1):
        raise ConfigError(
            f"{size}x{size} images cannot be halved {m.unet_levels - 1} times",
            key="diffusion.unet_levels",
            fix=f"use at most {int(math.log2(size & -size)) + 1} levels",
        )
    return UNet(data.shape, m.unet_channels, m.unet_levels, m.unet_blocks, m.time_dim, m.dropout)
