"""GCT: 3C parameters, the reference formula, and identity at the reference's zero initialisation."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.gct import GCT


def test_parameter_count():
    assert sum(p.numel() for p in GCT(256).parameters()) == 3 * 256  # alpha, gamma, beta per channel


def test_reference_init_is_identity_and_default_is_near_identity():
    x = torch.randn(2, 32, 9, 11)
    torch.testing.assert_close(GCT(32, gamma_init=0.0)(x), x)
    y = GCT(32)(x)
    gate = y / x
    # gate - 1 = tanh(0.01 * s_hat) with s_hat normalised to unit RMS over channels: its mean size is at most 1%
    assert not torch.equal(y, x) and (gate - 1).abs().mean() <= 0.01


def test_matches_reference_formula_l2():
    torch.manual_seed(0)
    m = GCT(16)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    x = torch.randn(2, 16, 5, 7)
    emb = (x.pow(2).sum((2, 3), keepdim=True) + 1e-5).pow(0.5) * m.alpha
    norm = m.gamma / (emb.pow(2).mean(dim=1, keepdim=True) + 1e-5).pow(0.5)
    torch.testing.assert_close(m(x), x * (1.0 + torch.tanh(emb * norm + m.beta)))
