"""CascadedGroupAttention: parameter count, the reference forward on one window, and the bias sub-table."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.cascaded_group_attention import CascadedGroupAttention


def test_parameter_count_reference_configuration():
    c, heads, kd, d, k = 256, 4, 16, 64, 5  # d = attn_ratio 4 * key_dim 16
    qkv = (c // heads) * (2 * kd + d) + 2 * (2 * kd + d)  # bias-free 1x1 + BatchNorm, per head
    dw = kd * k * k + 2 * kd  # depthwise 5x5 + BatchNorm, per head
    proj = d * heads * c + 2 * c  # 1x1 + BatchNorm
    biases = heads * 7 * 7  # offsets (|dy|, |dx|) in a 7x7 window: 49
    expected = heads * (qkv + dw) + proj + biases
    assert sum(p.numel() for p in CascadedGroupAttention(c).parameters()) == expected == 93316


def _reference(m: CascadedGroupAttention, x: torch.Tensor) -> torch.Tensor:
    """The reference CascadedGroupAttention forward on one 7x7 window."""
    b, _, h, w = x.shape
    ab = m.attention_biases[:, m.attention_bias_idxs]
    feats_in = x.chunk(m.num_heads, dim=1)
    outs, feat = [], feats_in[0]
    for i, qkv in enumerate(m.qkvs):
        if i > 0:
            feat = feat + feats_in[i]
        q, k, v = qkv(feat).view(b, -1, h, w).split([m.key_dim, m.key_dim, m.d], dim=1)
        q = m.dws[i](q)
        q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)
        attn = ((q.transpose(-2, -1) @ k) * m.scale + ab[i]).softmax(-1)
        feat = (v @ attn.transpose(-2, -1)).view(b, m.d, h, w)
        outs.append(feat)
    return m.proj(torch.cat(outs, 1))


def test_matches_reference_on_one_window():
    torch.manual_seed(0)
    m = CascadedGroupAttention(64).eval()
    with torch.no_grad():
        m.attention_biases.normal_()
        x = torch.randn(2, 64, 7, 7)
        torch.testing.assert_close(m(x), _reference(m, x), atol=1e-5, rtol=1e-5)


def test_small_window_bias_is_offset_sub_table():
    m = CascadedGroupAttention(64)
    with torch.no_grad():
        m.attention_biases.copy_(torch.arange(m.attention_biases.numel()).view_as(m.attention_biases).float())
    sub = m._biases(3, 5)  # heads, 15, 15
    full = m.attention_biases[:, m.attention_bias_idxs]  # heads, 49, 49
    # token (y, x) of the 3x5 window is token y * 7 + x of the 7x7 window: same offsets, same bias.
    for a, (ya, xa) in enumerate((y, x) for y in range(3) for x in range(5)):
        for b_, (yb, xb) in enumerate((y, x) for y in range(3) for x in range(5)):
            assert torch.equal(sub[:, a, b_], full[:, ya * 7 + xa, yb * 7 + xb])
