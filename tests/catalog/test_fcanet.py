"""FcaNet: parameter count, and equality with the reference's 'adaptive pool to 7x7, then per-channel DCT' squeeze."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnsurgeon.catalog.modules.fcanet import FcaNet

TOP_X = [0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2]
TOP_Y = [0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2]


def reference_dct_filter(channels: int, size: int = 7) -> torch.Tensor:
    """The reference's get_dct_filter written out pixel by pixel: (channels, size, size)."""

    def basis(pos: int, freq: int) -> float:
        value = math.cos(math.pi * freq * (pos + 0.5) / size) / math.sqrt(size)
        return value if freq == 0 else value * math.sqrt(2)

    out = torch.zeros(channels, size, size)
    part = channels // 16
    for g, (u, v) in enumerate(zip(TOP_X, TOP_Y, strict=True)):
        for tx in range(size):
            for ty in range(size):
                out[g * part : (g + 1) * part, tx, ty] = basis(tx, u) * basis(ty, v)
    return out


def test_parameter_count_is_se_without_biases():
    c = 256
    assert sum(p.numel() for p in FcaNet(c).parameters()) == 2 * c * (c // 16) == 8_192  # DCT filters are buffers


@pytest.mark.parametrize("size", [(7, 7), (15, 20), (1, 1), (40, 40)])
def test_matches_reference_pool_then_dct(size):
    torch.manual_seed(0)
    c = 64
    m = FcaNet(c).eval()
    x = torch.randn(2, c, *size)
    pooled = F.adaptive_avg_pool2d(x, 7)
    squeeze = (pooled * reference_dct_filter(c)).sum((2, 3))
    with torch.no_grad():
        expected = x * m.fc(squeeze)[:, :, None, None]
        torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


def test_channel_count_not_divisible_by_16_falls_back():
    assert FcaNet(24).num_freq == 12 and FcaNet(40).num_freq == 10 and FcaNet(256).num_freq == 16
    assert FcaNet(24)(torch.randn(1, 24, 5, 6)).shape == (1, 24, 5, 6)
