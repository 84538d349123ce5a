"""EfficientAttention (CloFormer): runs where the reference fails, pools borders correctly, same parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnsurgeon.catalog.modules.efficient_attention import EfficientAttention


def test_runs_at_20x20_with_window_7():
    """The reference's low-frequency branch raises here: 20 is not a multiple of 7."""
    torch.manual_seed(0)
    m = EfficientAttention(64, 4, (2, 2), (5,), 7).eval()
    x = torch.randn(2, 64, 20, 20)
    with torch.no_grad():
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_border_cells_average_real_pixels_only():
    m = EfficientAttention(32, 2, (1, 1), (3,), 7)
    x = torch.randn(1, 32, 20, 20)
    pooled = m._pool(x)
    assert pooled.shape[-2:] == (3, 3)
    torch.testing.assert_close(pooled[..., 2, 2], x[..., 14:, 14:].mean((-2, -1)))
    torch.testing.assert_close(pooled[..., 0, 2], x[..., :7, 14:].mean((-2, -1)))
    x14 = torch.randn(1, 32, 14, 14)  # divisible: identical to plain average pooling
    torch.testing.assert_close(m._pool(x14), F.avg_pool2d(x14, 7))


def test_parameter_count_matches_reference():
    """CloFormer stage-3 configuration: dim 128, 8 heads split [4, 4], kernel [7] (window 2)."""
    m = EfficientAttention(128, 8, (4, 4), (7,), 2)
    d, g, c = 16, 4, 128
    dw_conv = 3 * d * g * 7 * 7 + 3 * d * g  # depthwise 7x7 on q, k, v + bias
    attn_map = 2 * (d * g * d * g + d * g)  # two 1x1 convs with bias
    qkv = c * 3 * d * g + 3 * d * g
    global_q = c * d * g + d * g
    global_kv = c * 2 * d * g + 2 * d * g
    proj = c * c + c
    assert sum(p.numel() for p in m.parameters()) == dw_conv + attn_map + qkv + global_q + global_kv + proj == 83_968


@pytest.mark.parametrize("c1", [16, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512, 640, 768, 1024])
def test_default_heads_rule(c1):
    m = EfficientAttention(c1)
    assert c1 % m.num_heads == 0 and sum(m.group_split) == m.num_heads
    assert all(g > 0 for g in m.group_split)  # both branches present at every YOLO width
    if c1 >= 32:
        assert m.dim_head == 16  # CloFormer's head width
