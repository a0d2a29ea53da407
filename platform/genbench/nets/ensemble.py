"""Ensemble layers: S networks of one architecture as one module whose tensors carry a leading member dimension.

`stack(nets)` turns S built networks (each initialised from its own seed) into one ensemble module that maps
(S, B, ...) to (S, B, ...): linear layers become batched matmuls, batch norm keeps per-member statistics, spectral
norm runs its power iteration per member. `write_member(ensemble, i, net)` copies member i's state back into a plain
network of the same architecture (to evaluate or sample it as the per-seed path would). Nothing couples members:
the gradient of a sum of member losses with respect to member i's parameters is member i's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from genbench.nets.mlp import Maxout


class NotBatchable(Exception):
    """A network holds a layer the ensemble layers do not cover (the run takes the per-seed path)."""


def _spectral(layer: nn.Module) -> Any | None:
    """The spectral-norm parametrisation of layer's weight (torch's _SpectralNorm), or None."""
    if not parametrize.is_parametrized(layer, "weight"):
        return None
    chain: Any = layer.parametrizations  # a ModuleDict; torch types it as Tensor | Module
    if len(chain.weight) != 1 or type(chain.weight[0]).__name__ != "_SpectralNorm":
        raise NotBatchable(f"a parametrisation other than spectral norm on {type(layer).__name__}")
    return chain.weight[0]


def _weight(layer: Any) -> torch.Tensor:
    """The stored weight: under spectral norm the parametrisation's original, else the weight itself."""
    return layer.parametrizations.weight.original if _spectral(layer) is not None else layer.weight


def _mv(matrices: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Each member's matrix times its vector: (S, m, n), (S, n) -> (S, m). Element-wise products and a sum, as
    torch.mv is not a matmul for the FLOP count (genbench.train.flops), so that a member's step counts as its
    per-seed run's does."""
    return (matrices * vectors.unsqueeze(1)).sum(dim=2)


def spectral_sigma(
    matrix: torch.Tensor, u: torch.Tensor, v: torch.Tensor, eps: float, iterations: int, training: bool
) -> torch.Tensor:
    """Each member's spectral norm estimate of its matrix (S, m, n), as torch's spectral_norm computes one network's:
    in training, `iterations` power iterations on the buffers u (S, m) and v (S, n), in place and without gradient;
    then sigma = u . (W v), through which the gradient flows: (S,)."""
    if training:
        with torch.no_grad():
            for _ in range(iterations):
                u.copy_(F.normalize(_mv(matrix, v), dim=1, eps=eps))
                v.copy_(F.normalize(_mv(matrix.transpose(1, 2), u), dim=1, eps=eps))
    return (u.clone() * _mv(matrix, v.clone())).sum(dim=1)


def write_weights(ensemble: Any, i: int, layer: Any) -> None:
    """Member i of an ensemble linear or conv layer into its plain layer: its weight (`ensemble.weight[i]`, shaped
    as the layer holds it), its bias and, under spectral norm, its power iteration's u and v."""
    _weight(layer).data.copy_(ensemble.weight[i])
    if ensemble.bias is not None:
        layer.bias.data.copy_(ensemble.bias[i])
    norm = _spectral(layer)
    if norm is not None:
        norm._u.copy_(ensemble.u[i])
        norm._v.copy_(ensemble.v[i])


class EnsembleLinear(nn.Module):
    """S linear layers: (S, B, in) -> (S, B, out) by one batched matmul; optional per-member spectral norm.

    Spectral norm follows torch.nn.utils.parametrizations.spectral_norm: in training mode every forward pass runs
    one power iteration on each member's (u, v) without gradient, then divides the weight by
    sigma = u . (W v), through which the gradient flows."""

    u: torch.Tensor  # (S, out) buffers under spectral norm
    v: torch.Tensor  # (S, in)

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        # stored as each member's transpose, (S, in, out): the batched matmul then reads it without a transposed
        # operand (measured 7% faster forward and backward than (S, out, in) on a CPU core)
        self.weight_t = nn.Parameter(torch.stack([_weight(layer).detach().t() for layer in layers]))
        biases: list[Any] = [layer.bias for layer in layers]
        self.bias = nn.Parameter(torch.stack([b.detach() for b in biases])) if biases[0] is not None else None
        norms: list[Any] = [_spectral(layer) for layer in layers]
        self.spectral = norms[0] is not None
        if self.spectral:
            self.eps, self.iterations = norms[0].eps, norms[0].n_power_iterations
            self.register_buffer("u", torch.stack([n._u for n in norms]))  # (S, out)
            self.register_buffer("v", torch.stack([n._v for n in norms]))  # (S, in)

    @property
    def weight(self) -> torch.Tensor:
        """(S, out, in): each member's weight as nn.Linear holds it (a view)."""
        return self.weight_t.transpose(1, 2)

    def effective_weight_t(self) -> torch.Tensor:
        """(S, in, out): the weights, divided by each member's spectral norm estimate under spectral norm."""
        if not self.spectral:
            return self.weight_t
        sigma = spectral_sigma(self.weight, self.u, self.v, self.eps, self.iterations, self.training)  # (S,)
        return self.weight_t / sigma.view(-1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight_t = self.effective_weight_t()  # (S, in, out)
        if self.bias is None:
            return torch.bmm(x, weight_t)
        return torch.baddbmm(self.bias.unsqueeze(1), x, weight_t)  # (S, B, out)

    def write(self, i: int, layer: Any) -> None:
        write_weights(self, i, layer)


class EnsembleBatchNorm(nn.Module):
    """S BatchNorm1d layers on (S, B, C) (or BatchNorm2d on (S, B, C, H, W)): each member's statistics over its own
    batch, its own running averages.

    The members' channels sit side by side as S * C channels of one batch_norm call over (B, S * C). Its reductions
    round differently from one member's call; the bias before a batch norm has a zero gradient up to rounding, which
    Adam normalises into full-size steps, so runs with batch norm agree with their per-seed runs less tightly."""

    running_mean: torch.Tensor  # (S, C) buffers
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor  # (S,)

    def __init__(self, layers: list[Any]) -> None:
        super().__init__()
        first = layers[0]
        if not (first.affine and first.track_running_stats) or first.momentum is None:
            raise NotBatchable("batch norm without affine parameters, running statistics or a momentum")
        self.eps, self.momentum = first.eps, first.momentum
        self.weight = nn.Parameter(torch.stack([layer.weight.detach() for layer in layers]))  # (S, C)
        self.bias = nn.Parameter(torch.stack([layer.bias.detach() for layer in layers]))  # (S, C)
        self.register_buffer("running_mean", torch.stack([layer.running_mean for layer in layers]))  # (S, C)
        self.register_buffer("running_var", torch.stack([layer.running_var for layer in layers]))  # (S, C)
        self.register_buffer("num_batches_tracked", torch.stack([layer.num_batches_tracked for layer in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        members, rows, channels, *spatial = x.shape  # (S, B, C) or, as BatchNorm2d, (S, B, C, H, W)
        flat = x.transpose(0, 1).reshape(rows, members * channels, *spatial)  # (B, S * C, ...): one call's channels
        if self.training:
            self.num_batches_tracked.add_(1)
        out = F.batch_norm(
            flat,
            self.running_mean.view(-1),
            self.running_var.view(-1),
            self.weight.reshape(-1),
            self.bias.reshape(-1),
            self.training,
            self.momentum,
            self.eps,
        )
        return out.view(rows, members, channels, *spatial).transpose(0, 1)  # (S, B, C, ...)

    def write(self, i: int, layer: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
        layer.weight.data.copy_(self.weight[i])
        layer.bias.data.copy_(self.bias[i])
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            getattr(layer, name).copy_(getattr(self, name)[i])


class EnsembleMaxout(nn.Module):
    """Maxout per member: (S, B, in) -> (S, B, width * k) -> max over each group of k -> (S, B, width)."""

    def __init__(self, inner: nn.Module, width: int, k: int) -> None:
        super().__init__()
        self.linear, self.width, self.k = inner, width, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)  # (S, B, width * k)
        return h.view(h.shape[0], h.shape[1], self.width, self.k).amax(dim=-1)

    def write(self, i: int, layer: Any) -> None:
        write_member(self.linear, i, layer.linear)


ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.SiLU, nn.GELU, nn.ELU, nn.Softplus)

# layer class -> its ensemble builder (S layers -> one module with a `write(i, layer)` method); other files add theirs
# with @stacks(cls) so that a family's layers batch without this file knowing them
STACKERS: dict[type, Callable[[list[Any]], nn.Module]] = {}


def stacks(*classes: type) -> Callable[[Callable[[list[Any]], nn.Module]], Callable[[list[Any]], nn.Module]]:
    """Register an ensemble builder for layers of `classes` (their instances, one per member, -> one module)."""

    def register(build: Callable[[list[Any]], nn.Module]) -> Callable[[list[Any]], nn.Module]:
        STACKERS.update(dict.fromkeys(classes, build))
        return build

    return register


stacks(nn.Linear)(EnsembleLinear)
stacks(nn.BatchNorm1d)(EnsembleBatchNorm)


@stacks(Maxout)
def _maxout(layers: list[Any]) -> nn.Module:
    return EnsembleMaxout(stack([layer.linear for layer in layers]), layers[0].width, layers[0].k)


def stack(nets: list[Any]) -> nn.Module:
    """One ensemble module of S networks of the same architecture; raises NotBatchable for an unknown layer."""
    first = nets[0]
    if any(type(n).__name__ != type(first).__name__ for n in nets):  # parametrised layers: a class per instance
        raise NotBatchable("the members' networks differ in architecture")
    if isinstance(first, nn.Sequential):
        return nn.Sequential(*[stack([n[j] for n in nets]) for j in range(len(first))])
    if isinstance(first, ELEMENTWISE):
        return first  # stateless and element-wise: one instance serves every member
    # the most specific registered class wins: a subclass (MADE's MaskedLinear is an nn.Linear) has its own layer
    build = next((STACKERS[cls] for cls in type(first).__mro__ if cls in STACKERS), None)
    if build is None:
        raise NotBatchable(f"no ensemble layer for {type(first).__name__}")
    return build(nets)


def write_member(ensemble: nn.Module, i: int, net: nn.Module) -> None:
    """Copy member i's parameters and buffers from `ensemble` into `net` (a network `stack` took as member)."""
    with torch.no_grad():
        if isinstance(ensemble, nn.Sequential):
            for part, layer in zip(ensemble, net.children()):
                write_member(part, i, layer)
        elif hasattr(ensemble, "write"):  # an ensemble layer: it knows its plain layer's state
            ensemble.write(i, net)  # type: ignore[operator]  # nn.Module types attributes as Tensor | Module
