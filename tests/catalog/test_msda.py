"""MSDA: parameter count, the reference math away from borders, and masked padding at borders."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnsurgeon.catalog.modules.msda import MSDA


def test_parameter_count_reference_configuration():
    c = 256
    qkv = c * 3 * c + 3 * c  # 1x1 conv with bias
    proj = c * c + c  # Linear
    assert sum(p.numel() for p in MSDA(c).parameters()) == qkv + proj == 263168


def _reference(m: MSDA, x: torch.Tensor) -> torch.Tensor:
    """Reference DilateAttention per dilation group (zero-padded unfold, no mask), equal head split."""
    b, c, h, w = x.shape
    nd = len(m.dilations)
    qkv = m.qkv(x).reshape(b, 3, nd, c // nd, h, w).permute(2, 1, 0, 3, 4, 5)
    outs = []
    for g, dil in enumerate(m.dilations):
        q, k, v = qkv[g]
        d, kk = m.head_dim, m.kernel_size**2
        heads = c // nd // d
        unfold = torch.nn.Unfold(m.kernel_size, dil, dil * (m.kernel_size - 1) // 2, 1)
        q = q.reshape(b, heads, d, 1, h * w).permute(0, 1, 4, 3, 2)
        k = unfold(k).reshape(b, heads, d, kk, h * w).permute(0, 1, 4, 2, 3)
        attn = ((q @ k) * d**-0.5).softmax(-1)
        v = unfold(v).reshape(b, heads, d, kk, h * w).permute(0, 1, 4, 3, 2)
        outs.append((attn @ v).transpose(1, 2).reshape(b, h, w, c // nd))
    return F.linear(torch.cat(outs, -1), m.proj.weight, m.proj.bias).permute(0, 3, 1, 2)


def test_interior_matches_reference_and_border_is_masked():
    torch.manual_seed(0)
    m = MSDA(48, 6).eval()  # 6 heads over dilations (1, 2, 3): 2 each, as the reference requires
    x = torch.randn(2, 48, 12, 13)
    with torch.no_grad():
        y, ref = m(x), _reference(m, x)
    r = 3  # largest dilation: pixels at least 3 from the border see no padding
    torch.testing.assert_close(y[..., r:-r, r:-r], ref[..., r:-r, r:-r], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(y[..., 0, 0], ref[..., 0, 0], atol=1e-4)  # the reference attends zero padding


def test_uneven_head_split():
    m = MSDA(64)  # 8 heads over 3 dilations
    assert m.group_heads == (3, 3, 2) and m.head_dim == 8
    assert m(torch.randn(1, 64, 1, 1)).shape == (1, 64, 1, 1)
