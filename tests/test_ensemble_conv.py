"""Ensemble conv layers: S stacked DCGAN nets compute, per member, what each net computes alone."""

from __future__ import annotations

import torch
from torch import nn

from genbench.gan import NORMS
from genbench.nets.conv import ConvEncoder, ConvGenerator
from genbench.nets.ensemble import stack, write_member
from genbench.nets.ensemble_conv import EnsembleConvEncoder, EnsembleConvGenerator
from genbench.train.flops import FlopCount

MEMBERS, ROWS, SHAPE = 3, 5, (2, 8, 8)  # (C, H, W)


def _members(build: type[nn.Module], *args: object, **kwargs: object) -> list[nn.Module]:
    nets = []
    for seed in range(MEMBERS):
        torch.manual_seed(seed)
        nets.append(build(*args, **kwargs))
    return nets


def _one_by_one(nets: list[nn.Module], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each net on its member's rows: outputs (S, B, ...) and the input gradient of their squares' sum."""
    x = x.detach().requires_grad_(True)
    out = torch.stack([net(x[i]) for i, net in enumerate(nets)])
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    return out, grad


def test_stacked_discriminators_with_spectral_and_batch_norm_match_each_member() -> None:
    """Two training-mode passes (spectral norm's power iteration and batch norm's running averages move), the
    outputs, input gradients, weight gradients and the state written back: each member's own."""
    spectral = NORMS.get("spectral_norm")
    nets = _members(ConvEncoder, SHAPE, 1, 4, True, spectral)
    ensemble = stack(nets)
    assert isinstance(ensemble, EnsembleConvEncoder)
    x = torch.randn(MEMBERS, ROWS, *SHAPE)  # (S, B, C, H, W)
    for _ in range(2):
        want, want_grad = _one_by_one(nets, x)
        xb = x.detach().requires_grad_(True)
        got = ensemble(xb)  # (S, B, 1)
        (got_grad,) = torch.autograd.grad(got.square().sum(), xb)
        assert torch.allclose(got, want, atol=1e-5) and torch.allclose(got_grad, want_grad, atol=1e-5)
    written = _members(ConvEncoder, SHAPE, 1, 4, True, spectral)
    for i, net in enumerate(written):
        write_member(ensemble, i, net)
        for a, b in zip(net.state_dict().values(), nets[i].state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6)


def test_stacked_generators_match_each_member_and_their_weight_gradients() -> None:
    nets = _members(ConvGenerator, 4, SHAPE, 4, True)
    ensemble = stack(nets)
    assert isinstance(ensemble, EnsembleConvGenerator)
    z = torch.randn(MEMBERS, ROWS, 4)  # (S, B, latent)
    got = ensemble(z)  # (S, B, C, H, W)
    want = torch.stack([net(z[i]) for i, net in enumerate(nets)])
    assert got.shape == (MEMBERS, ROWS, *SHAPE) and torch.allclose(got, want, atol=1e-5)
    got.square().sum().backward()
    want.square().sum().backward()
    for stacked, *alone in zip(ensemble.parameters(), *(net.parameters() for net in nets)):
        want_grad = torch.stack([p.grad for p in alone if p.grad is not None])  # (S, ...)
        if stacked.shape != want_grad.shape:  # EnsembleLinear holds each member's weight transposed
            want_grad = want_grad.transpose(1, 2)
        assert stacked.grad is not None and torch.allclose(stacked.grad, want_grad, atol=1e-4)


def test_a_grouped_convolution_counts_its_members_flops() -> None:
    """torch counts a grouped convolution's weight gradient as if each group read every channel; FlopCount does not:
    S members as S groups count S times one member's forward and backward."""
    for layer in (nn.Conv2d, nn.ConvTranspose2d):
        nets = _members(layer, 2, 3, 4, stride=2, padding=1)
        x = torch.randn(MEMBERS, ROWS, *SHAPE)
        with FlopCount() as one:
            nets[0](x[0]).sum().backward()
        with FlopCount() as many:
            stack(nets)(x).sum().backward()
        assert one.total > 0 and many.total == MEMBERS * one.total
