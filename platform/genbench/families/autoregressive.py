"""Autoregressive family: MADE with a mixture head per coordinate (vectors), PixelCNN over levels (images)."""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from genbench.config import RunConfig
from genbench.data import Dataset
from genbench.errors import ConfigError
from genbench.families.base import Autocast, Parts, backward_in_chunks, chunk_rows, draw_categorical, map_rows
from genbench.families.configs.autoregressive import AutoregressiveConfig
from genbench.families.steps import Horizon, eval_mode, lr_schedule, optimiser, optimiser_step
from genbench.nets.masked import MADE, PixelCNN

MIN_LOG_SCALE = -7.0  # floor of a component's log scale (standardised units): keeps densities finite
EDGE_FAR = 1.0e4  # stands in for +-infinity at the outer edges of the discretised logistic's bins


def mixture_log_prob(x: torch.Tensor, params: torch.Tensor, component: str) -> torch.Tensor:
    """log p(x) of 1-D mixtures: x (...,), params (..., 3K) = logits, means, log scales -> (...,)."""
    logits, means, log_scales = params.chunk(3, dim=-1)  # (..., K) each
    log_scales = log_scales.clamp(min=MIN_LOG_SCALE)
    z = (x.unsqueeze(-1) - means) * torch.exp(-log_scales)  # (..., K)
    if component == "gaussian":
        log_pdf = -0.5 * z.square() - log_scales - 0.5 * math.log(2 * math.pi)
    else:  # logistic density: e^-z / (s (1 + e^-z)^2)
        log_pdf = -z - 2.0 * F.softplus(-z) - log_scales
    return torch.logsumexp(F.log_softmax(logits, dim=-1) + log_pdf, dim=-1)


def mixture_sample(params: torch.Tensor, component: str) -> torch.Tensor:
    """One draw from each 1-D mixture: params (B, 3K) -> (B,); NaN where the mixture weights are not finite."""
    logits, means, log_scales = params.chunk(3, dim=-1)  # (B, K) each
    k, bad = draw_categorical(logits)  # (B,) each
    k = k.unsqueeze(-1)  # (B, 1)
    mean = means.gather(-1, k).squeeze(-1)  # (B,)
    scale = log_scales.clamp(min=MIN_LOG_SCALE).gather(-1, k).squeeze(-1).exp()  # (B,)
    if component == "gaussian":
        draw = mean + scale * torch.randn_like(mean)
    else:
        u = torch.rand_like(mean).clamp(1e-6, 1 - 1e-6)
        draw = mean + scale * (u.log() - (-u).log1p())  # inverse logistic CDF
    return draw.masked_fill(bad, math.nan)


def discretised_logistic_log_probs(params: torch.Tensor, levels: int) -> torch.Tensor:
    """log P(level) of a mixture of logistics binned on `levels` values in [-1, 1] (Salimans et al. 2017).

    params (B, C, 3K, H, W) -> (B, C, L, H, W). Bin l covers [y_l - h, y_l + h] with y_l = 2l/(L-1) - 1 and
    h = 1/(L-1); the outer bins extend to +-infinity, so the L probabilities sum to 1 exactly.
    log(sig(a) - sig(b)) = logsig(a) + logsig(-b) + log(1 - e^(b - a)) is stable for every a > b.
    """
    logits, means, log_scales = params.unsqueeze(2).chunk(3, dim=3)  # (B, C, 1, K, H, W) each
    inv_scale = torch.exp(-log_scales.clamp(min=MIN_LOG_SCALE))
    inner = torch.linspace(-1.0, 1.0, levels, device=params.device)[:-1] + 1.0 / (levels - 1)  # (L-1,)
    far = inner.new_full((1,), EDGE_FAR)
    upper, lower = torch.cat([inner, far]), torch.cat([-far, inner])  # (L,) bin edges
    shape = (1, 1, levels, 1, 1, 1)
    a = (upper.view(shape) - means) * inv_scale  # (B, C, L, K, H, W)
    b = (lower.view(shape) - means) * inv_scale
    log_bin = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a))
    return torch.logsumexp(F.log_softmax(logits, dim=3) + log_bin, dim=3)  # (B, C, L, H, W)


@torch.no_grad()
def init_mixture_head(out_layer: nn.Linear, z_train: torch.Tensor, k: int) -> None:
    """Start every coordinate's mixture spread over its marginal: equal weights, means at the marginal's
    quantiles (k + 0.5) / K, scales one K-th of the (unit) spread, and small output weights.

    Components that start identical receive identical gradients and separate only slowly (the MDN
    symmetry problem): on grid25 such a start stalls at one broad Gaussian. Spread like a k-means start,
    some component lies near every mode of the marginal from the first step.
    """
    dim = z_train.shape[1]
    probs = (torch.arange(k, dtype=z_train.dtype) + 0.5) / k  # (K,)
    quantiles = torch.quantile(z_train, probs, dim=0).T  # (D, K)
    bias = torch.cat([torch.zeros(dim, k), quantiles, torch.full((dim, k), math.log(1.0 / k))], dim=1)  # (D, 3K)
    out_layer.bias.copy_(bias.flatten())
    out_layer.weight.mul_(0.1)


class Autoregressive:
    """Exact-likelihood autoregressive model trained by maximum likelihood; sampling is sequential.

    Vectors (N, D): data are standardised per coordinate, a MADE gives each coordinate's mixture
    parameters from the coordinates before it, and the NLL is reported in data space (the log-Jacobian
    of the standardisation added back). Images (N, C, H, W) with L levels: a PixelCNN gives each sub-pixel
    a distribution over the L levels (raster order, R -> G -> B within a pixel), so the NLL is that of the
    discrete values, exactly. Sampling runs one network evaluation per coordinate / sub-pixel.
    """

    batches_per_step = 1
    nll_method = "exact"

    def __init__(self, cfg: RunConfig, data: Dataset) -> None:
        m, o = cfg.model, cfg.optim
        self.cfg, self.shape, self.is_image = m, data.shape, data.is_image
        self.net = self._image_net(m, data) if self.is_image else self._vector_net(m, data)
        self.opt = optimiser(o, self.net.parameters())
        self.horizon = Horizon(cfg.train.steps)  # the loop updates it under a compute budget
        self.sched = lr_schedule(self.opt, o, self.horizon)
        self.grad_clip = o.grad_clip
        self.sample_nfe = data.dim  # D, or C * H * W: one evaluation per value, in order
        self.autocast = Autocast()  # fp32 until genbench.train.device.place says otherwise
        self.sampler = f"one value at a time ({data.dim} passes)"
        self.chunk = chunk_rows(self._row_bytes(m, data))

    def _vector_net(self, m: AutoregressiveConfig, data: Dataset) -> nn.Module:
        self.shift = data.train.mean(dim=0)  # (D,)
        self.scale = data.train.std(dim=0).clamp(min=1e-6)  # (D,)
        net = MADE(data.dim, 3 * m.mixtures, m.made_depth, m.made_width)
        init_mixture_head(net.body[-1], (data.train - self.shift) / self.scale, m.mixtures)
        return net

    def _image_net(self, m: AutoregressiveConfig, data: Dataset) -> nn.Module:
        if data.levels is None or data.levels < 2:
            raise ConfigError(
                f"image data set '{data.name}' has no discrete levels",
                key="data.name",
                fix="the PixelCNN models discrete intensities: use digits, stacked_digits or 8-bit "
                "images kept at their stored size and channels",
            )
        colors = data.shape[0]
        if m.pixel_channels // 2 < colors:
            raise ConfigError(
                f"{m.pixel_channels} maps cannot split into {colors} colour groups per half",
                key="autoregressive.pixel_channels",
                fix=f"use at least {2 * colors}",
            )
        self.levels = data.levels
        per_value = data.levels if m.pixel_head == "categorical" else 3 * m.mixtures
        return PixelCNN(colors, per_value, m.pixel_channels, m.pixel_blocks, m.first_kernel, m.kernel)

    @staticmethod
    def _row_bytes(m: AutoregressiveConfig, data: Dataset) -> float:
        """Bytes of one example's largest tensor: the log-probabilities of every level of every sub-pixel
        (x K mixture components for the logistic head), or a MADE's 3K parameters per coordinate."""
        if not data.is_image:
            return 4.0 * 3 * m.mixtures * data.dim
        return 4.0 * data.dim * int(data.levels or 1) * (m.mixtures if m.pixel_head == "logistic" else 1)

    def modules(self) -> dict[str, nn.Module]:
        return {"pixelcnn" if self.is_image else "made": self.net}

    def parts(self) -> Parts:
        standardisation = () if self.is_image else ("shift", "scale")  # vectors only: (D,) each
        return Parts(
            modules={"net": self.net},
            optimisers={"opt": self.opt},
            schedulers={"sched": self.sched},
            device_tensors=standardisation,
        )

    # ---- likelihood -------------------------------------------------------------------------------------

    def _level_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log P over the L levels of every sub-pixel: images (B, C, H', W) -> (B, C, L, H', W)."""
        return self._head(self.net(x))  # net: (B, C, P, H', W)

    def _head(self, params: torch.Tensor) -> torch.Tensor:
        """Output parameters (B, C, P, H', W') -> log P over levels (B, C, L, H', W'); each sub-pixel alone."""
        if self.cfg.pixel_head == "categorical":
            return F.log_softmax(params, dim=2)
        return discretised_logistic_log_probs(params, self.levels)

    def _nll(self, batch: torch.Tensor) -> torch.Tensor:
        """Nats per example, differentiable: (B,)."""
        if self.is_image:
            index = (batch * (self.levels - 1)).round().long().unsqueeze(2)  # (B, C, 1, H, W)
            log_p = self._level_log_probs(batch).gather(2, index)  # (B, C, 1, H, W)
            return -log_p.flatten(1).sum(dim=1)
        z = (batch - self.shift) / self.scale  # (B, D)
        log_p = mixture_log_prob(z, self.net(z), self.cfg.component)  # (B, D)
        return self.scale.log().sum() - log_p.sum(dim=1)

    @torch.no_grad()
    def nll(self, batch: torch.Tensor) -> torch.Tensor:
        return map_rows(self._nll, batch, self.chunk)  # exact and noise-free: chunking changes nothing

    def train_step(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step on the batch's mean NLL, its gradient accumulated over micro-batches of self.chunk rows (the
        same gradient: no layer depends on the batch); a batch that fits one chunk runs as one pass."""
        self.opt.zero_grad(set_to_none=True)
        loss = backward_in_chunks(self._loss_share, batch, self.chunk)
        norm = optimiser_step(self.opt, self.grad_clip, self.sched)
        return {"train.loss": loss.detach(), "train.grad_norm": norm}

    def _loss_share(self, part: torch.Tensor, share: float) -> torch.Tensor:
        with self.autocast():  # the forward pass and the loss; the reported likelihood (nll) stays fp32
            return self._nll(part).mean() * share

    # ---- sampling ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        with eval_mode(self.net):
            return self._sample_images(n) if self.is_image else self._sample_vectors(n)

    def _sample_vectors(self, n: int) -> torch.Tensor:
        z = self.shift.new_zeros(n, len(self.shift))  # (n, D), filled coordinate by coordinate
        for d in range(z.shape[1]):
            z[:, d] = mixture_sample(self.net(z)[:, d], self.cfg.component)  # one MADE pass per coordinate
        return z * self.scale + self.shift

    def _pixel_params(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        """The output parameters of pixel (row, col) for images x (b, C, H, W): (b, C, P, 1, 1), a copy, so that
        the pass's whole output (b, C, P, row + 1, W) is freed before the next chunk's."""
        return self.net(x[:, :, : row + 1])[:, :, :, row : row + 1, col : col + 1].clone()

    def _sample_images(self, n: int) -> torch.Tensor:
        colors, height, width = self.shape
        x = torch.zeros(n, colors, height, width, device=next(self.net.parameters()).device)
        for row in range(height):
            for col in range(width):
                for c in range(colors):
                    # Rows below `row` cannot influence it (causal masks), so only rows 0..row are fed; the
                    # head (a logistic mixture over every level) runs on the one pixel drawn.
                    pixel = partial(self._pixel_params, row=row, col=col)  # the net over chunks of the n samples
                    params = map_rows(pixel, x, self.chunk)  # (n, C, P, 1, 1)
                    log_p = self._head(params)[:, c, :, 0, 0]  # (n, L)
                    level, bad = draw_categorical(log_p)  # (n,) each
                    x[:, c, row, col] = (level.float() / (self.levels - 1)).masked_fill(bad, math.nan)
        return x
