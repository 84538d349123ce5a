"""CrissCrossAttention: parameter count and the criss-cross math against a per-pixel statement of it."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.criss_cross_attention import CrissCrossAttention


def test_parameter_count_reference_configuration():
    c, inner = 256, 256 // 8
    query = c * inner + inner
    key = c * inner + inner
    value = c * c + c
    gamma = 1
    assert sum(p.numel() for p in CrissCrossAttention(c).parameters()) == query + key + value + gamma == 82241


def test_matches_per_pixel_criss_cross():
    torch.manual_seed(0)
    m = CrissCrossAttention(16, gamma_init=0.5).eval()
    x = torch.randn(1, 16, 3, 4)
    with torch.no_grad():
        y = m(x)
        q, k, v = m.query_conv(x)[0], m.key_conv(x)[0], m.value_conv(x)[0]
        expected = torch.empty_like(x[0])
        for i in range(3):
            for j in range(4):
                # Column (without the pixel itself) then row (with it): each position once.
                keys = [(r, j) for r in range(3) if r != i] + [(i, col) for col in range(4)]
                logits = torch.stack([q[:, i, j] @ k[:, r, col] for r, col in keys])
                weights = logits.softmax(0)
                out = sum(wt * v[:, r, col] for wt, (r, col) in zip(weights, keys, strict=True))
                expected[:, i, j] = 0.5 * out + x[0, :, i, j]
    torch.testing.assert_close(y[0], expected, atol=1e-5, rtol=1e-5)


def test_gamma_zero_is_identity():
    m = CrissCrossAttention(16, gamma_init=0.0, recurrence=2)
    x = torch.randn(2, 16, 5, 6)
    torch.testing.assert_close(m(x), x)
