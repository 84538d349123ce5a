"""SOCA: the Newton-Schulz matrix square root, parameter count, and dtype/degenerate-map behaviour."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.soca import SOCA, covariance_pool, newton_schulz_sqrt


def test_covariance_matches_reference_centring_matrix():
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    m = 20
    i_hat = -torch.ones(m, m, dtype=torch.float64) / m / m + torch.eye(m, dtype=torch.float64) / m
    feats = x.flatten(2)
    torch.testing.assert_close(covariance_pool(x), feats @ i_hat @ feats.transpose(1, 2))


def test_newton_schulz_converges_to_the_square_root():
    torch.manual_seed(0)
    cov = covariance_pool(torch.randn(2, 12, 9, 10, dtype=torch.float64))
    root = newton_schulz_sqrt(cov, 25)
    torch.testing.assert_close(root @ root, cov, atol=1e-9, rtol=1e-9)
    # five iterations (the reference setting) is an approximation, but a close one
    assert (newton_schulz_sqrt(cov, 5) - root).abs().max() < 0.1 * root.abs().max()


def test_parameter_count_reference_configuration():
    c, hidden = 256, 256 // 8
    assert sum(p.numel() for p in SOCA(c).parameters()) == (c * hidden + hidden) + (hidden * c + c) == 16672


def test_constant_map_and_bfloat16():
    m = SOCA(16).eval()
    y = m(torch.randn(1, 16, 1, 1))  # zero covariance: the reference divides by zero here
    assert torch.isfinite(y).all()
    yb = m.bfloat16()(torch.randn(1, 16, 7, 7, dtype=torch.bfloat16))
    assert yb.dtype == torch.bfloat16 and torch.isfinite(yb.float()).all()


def test_large_maps_use_a_centre_crop():
    m = SOCA(4, 1, 5, 4).eval()  # max_size 4
    x = torch.randn(1, 4, 6, 4)
    with torch.no_grad():
        outer = x.clone()
        outer[:, :, 0] = 100.0  # outside the centre 4 rows: must not change the weights
        w1 = m(x)[:, :, 1:5] / x[:, :, 1:5]
        w2 = m(outer)[:, :, 1:5] / x[:, :, 1:5]
    torch.testing.assert_close(w1, w2)
