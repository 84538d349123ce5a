"""BiLevelRoutingAttention: parameter count, and routing to every region equals dense attention (padding masked)."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.bi_level_routing_attention import BiLevelRoutingAttention


def test_parameter_count_reference_configuration():
    c = 256
    qkv = c * (c + c + c) + 3 * c  # Linear to q (qk_dim = c), k, v with bias
    wo = c * c + c
    lepe = c * 3 * 3 + c  # depthwise 3x3 with bias
    assert sum(p.numel() for p in BiLevelRoutingAttention(c).parameters()) == qkv + wo + lepe == 265728


def _dense(m: BiLevelRoutingAttention, x: torch.Tensor) -> torch.Tensor:
    """Plain multi-head attention over all pixels + LePE + output projection."""
    b, c, h, w = x.shape
    q, k, v = m.qkv(x.flatten(2).transpose(1, 2)).split(c, dim=-1)
    heads = m.num_heads
    q, k, v = (t.reshape(b, -1, heads, c // heads).transpose(1, 2) for t in (q, k, v))
    attn = (q @ k.transpose(-2, -1) * c**-0.5).softmax(-1)  # the reference scales by the full width
    out = (attn @ v).transpose(1, 2).reshape(b, h, w, c)
    lepe = m.lepe(v.transpose(1, 2).reshape(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    return m.wo(out + lepe).permute(0, 3, 1, 2)


def test_routing_to_all_regions_is_dense_attention():
    torch.manual_seed(0)
    for size in [(14, 14), (15, 20), (8, 8)]:  # divisible, and padded (20 -> 21, 8 -> 4 regions of 2)
        m = BiLevelRoutingAttention(64, topk=100).eval()  # topk clipped to the number of regions
        x = torch.randn(2, 64, *size)
        with torch.no_grad():
            torch.testing.assert_close(m(x), _dense(m, x), atol=1e-5, rtol=1e-5)


def test_routing_restricts_attention():
    torch.manual_seed(0)
    m = BiLevelRoutingAttention(64).eval()  # 4 of 49 regions
    x = torch.randn(1, 64, 14, 14)
    with torch.no_grad():
        assert not torch.allclose(m(x), _dense(m, x), atol=1e-3)
