"""EMA: reference parameter count, group fallback, and that groups do not mix."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.ema import EMA


def test_parameter_count_reference_configuration():
    c1, groups = 256, 32
    cg = c1 // groups  # 8 channels per group, shared weights across groups
    gn = 2 * cg
    conv1x1 = cg * cg + cg
    conv3x3 = cg * cg * 9 + cg
    assert sum(p.numel() for p in EMA(c1, groups).parameters()) == gn + conv1x1 + conv3x3 == 672


def test_group_fallback_is_largest_divisor():
    assert EMA(48, 32).groups == 24
    assert EMA(16, 32).groups == 16
    assert EMA(256, 32).groups == 32
    x = torch.randn(1, 48, 9, 7)
    assert EMA(48)(x).shape == x.shape


def test_groups_are_independent():
    torch.manual_seed(0)
    m = EMA(64, 8).eval()
    x = torch.randn(1, 64, 10, 12)
    x2 = x.clone()
    x2[:, :8] += torch.randn(1, 8, 10, 12)  # perturb group 0 only
    with torch.no_grad():
        y, y2 = m(x), m(x2)
    assert not torch.allclose(y[:, :8], y2[:, :8])
    torch.testing.assert_close(y[:, 8:], y2[:, 8:])
