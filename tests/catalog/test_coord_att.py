"""CoordAtt: reference parameter count; batch 1 trains (BatchNorm over H + W positions)."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.coord_att import CoordAtt


def test_parameter_count_matches_reference():
    c, mip = 256, max(8, 256 // 32)
    expected = (c * mip + mip) + 2 * mip + 2 * (mip * c + c)  # conv1, bn1 (weight, bias), conv_h, conv_w
    assert sum(p.numel() for p in CoordAtt(c).parameters()) == expected == 6_680


def test_batch_one_1x1_trains():
    """Batch statistics of two equal values would zero the branch; running statistics keep it alive."""
    torch.manual_seed(0)
    m = CoordAtt(64).train()
    x = torch.randn(1, 64, 1, 1)
    m(x).square().mean().backward()
    for name, p in m.named_parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_attention_varies_along_both_axes():
    torch.manual_seed(0)
    m = CoordAtt(16).eval()
    x = torch.ones(1, 16, 6, 9)
    x[..., 2, :] = 3.0  # a bright row and a bright column must change the gates along H and along W
    x[..., :, 5] = -2.0
    with torch.no_grad():
        gate = m(x) / x
    assert gate[0, 0, :, 0].std() > 0 and gate[0, 0, 0, :].std() > 0
