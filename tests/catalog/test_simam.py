"""SimAM: the closed-form energy of the paper, and a finite gate on 1x1 maps (the reference returns NaN there)."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.simam import SimAM


def test_matches_the_papers_minimal_energy():
    # Paper Eq. 16: e_t* = 4(sigma^2 + lambda) / ((t - mu)^2 + 2 sigma^2 + 2 lambda); output = x * sigmoid(1 / e_t*),
    # with mu and sigma^2 over the other H*W - 1 neurons' unbiased estimate as in the reference.
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 5)
    lam = 1e-4
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True, unbiased=True)
    energy = 4 * (var + lam) / ((x - mu) ** 2 + 2 * var + 2 * lam)
    torch.testing.assert_close(SimAM(8, lam)(x), x * torch.sigmoid(1 / energy))
    assert sum(p.numel() for p in SimAM(256).parameters()) == 0


def test_one_by_one_map_is_finite_and_gated_by_sigmoid_half():
    x = torch.randn(3, 16, 1, 1)
    torch.testing.assert_close(SimAM(16)(x), x * torch.sigmoid(torch.tensor(0.5)))
