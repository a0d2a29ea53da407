"""Ensemble PixelCNN layers: S stacked PixelCNNs (masked convolutions of types A and B, colour groups) compute, per
member, what each PixelCNN computes alone."""

from __future__ import annotations

from typing import Any

import torch

from genbench.config import from_flat
from genbench.families import FAMILIES
from genbench.nets.ensemble import stack, write_member
from genbench.nets.ensemble_conv_autoregressive import EnsembleMaskedConv, EnsemblePixelCNN
from genbench.nets.masked import PixelCNN

MEMBERS, ROWS, COLORS, PARAMS = 3, 4, 3, 5  # three colour groups: type A's centre pixel sees the colours before


def _pixelcnns() -> list[PixelCNN]:
    nets = []
    for seed in range(MEMBERS):
        torch.manual_seed(seed)
        nets.append(PixelCNN(COLORS, PARAMS, channels=12, blocks=1, first_kernel=5, kernel=3))
    return nets


def test_stacked_pixelcnns_match_each_member_in_outputs_and_gradients() -> None:
    nets = _pixelcnns()
    ensemble = stack(nets)
    assert isinstance(ensemble, EnsemblePixelCNN) and isinstance(ensemble.body[0], EnsembleMaskedConv)
    assert ensemble.body[0].mask.shape == (MEMBERS, 12, COLORS, 5, 5)  # member-major, as Frozen indexes it
    x = torch.rand(MEMBERS, ROWS, COLORS, 6, 6).requires_grad_(True)  # (S, B, C, H, W)
    got = ensemble(x)  # (S, B, C, P, H, W)
    alone = x.detach().requires_grad_(True)
    want = torch.stack([net(alone[i]) for i, net in enumerate(nets)])
    assert got.shape == (MEMBERS, ROWS, COLORS, PARAMS, 6, 6) and torch.allclose(got, want, atol=1e-5)
    weights = torch.randn_like(want)  # a loss that reads every output differently
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    assert x.grad is not None and alone.grad is not None and torch.allclose(x.grad, alone.grad, atol=1e-5)
    for stacked, *members in zip(ensemble.parameters(), *(net.parameters() for net in nets)):
        want_grad = torch.stack([p.grad for p in members if p.grad is not None])  # (S, ...)
        assert stacked.grad is not None and torch.allclose(stacked.grad, want_grad, atol=1e-4)


def test_a_stacked_pixelcnn_stays_causal_and_writes_each_member_back() -> None:
    """Member i's output at the last sub-pixel's colour 0 ignores that pixel and everything after it in every member;
    write_member puts each member's weights back into a plain PixelCNN."""
    nets = _pixelcnns()
    ensemble = stack(nets)
    x = torch.rand(MEMBERS, ROWS, COLORS, 6, 6)
    changed = x.clone()
    changed[:, :, :, 5, 5] = 1.0 - changed[:, :, :, 5, 5]  # the last pixel, every colour
    assert torch.equal(ensemble(x)[:, :, 0, :, 5, 5], ensemble(changed)[:, :, 0, :, 5, 5])
    assert not torch.equal(ensemble(x)[:, :, 1, :, 5, 5], ensemble(changed)[:, :, 1, :, 5, 5])  # colour 1 sees 0
    for i, fresh in enumerate(_pixelcnns()[::-1]):
        write_member(ensemble, i, fresh)
        for a, b in zip(fresh.state_dict().values(), nets[i].state_dict().values()):
            assert torch.equal(a, b)


def test_batched_pixelcnns_step_alike_in_micro_batches(digits: Any) -> None:
    """A step accumulated over micro-batches of 5 rows of each member's 16 (the last of 1) moves every member's
    weights as one pass over the 16 does: the chunks cut each member's rows, never across members."""
    spec = FAMILIES.get("autoregressive")
    cfg = from_flat({"family": "autoregressive", "data.name": "digits", **spec.debug})

    def batched() -> Any:
        views = []
        for seed in range(MEMBERS):
            torch.manual_seed(seed)
            views.append(spec.build(cfg, digits))
        return spec.build_batched(views, cfg)

    whole, chunked = batched(), batched()
    chunked.chunk = 5
    batch = digits.train[: MEMBERS * 16].view(MEMBERS, 16, *digits.shape)  # (S, rows, C, H, W)
    one, many = whole.train_step(batch, []), chunked.train_step(batch, [])
    assert torch.allclose(one["train.loss"], many["train.loss"], rtol=1e-5)
    for a, b in zip(whole.net.parameters(), chunked.net.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
