"""iRMB: parameter count and, on a map the reference accepts (no padding), the reference's forward."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.irmb import iRMB


def test_parameter_count_reference_configuration():
    c = 256
    norm = 2 * c  # BatchNorm weight + bias
    qk = c * 2 * c  # bias-free 1x1
    v = c * c  # bias-free 1x1 (+ ReLU)
    dw = c * 3 * 3 + 2 * c  # depthwise 3x3 + BatchNorm
    proj = c * c  # bias-free 1x1
    assert sum(p.numel() for p in iRMB(c).parameters()) == norm + qk + v + dw + proj == 265472


def _reference(m: iRMB, x: torch.Tensor, ws: int) -> torch.Tensor:
    """The reference forward (attn_pre False, no padding): 'b c (h1 n1) (w1 n2) -> (b n1 n2) c h1 w1'."""
    shortcut = x
    x = m.norm(x)
    b, c, h, w = x.shape
    n1, n2 = h // ws, w // ws
    xw = x.reshape(b, c, ws, n1, ws, n2).permute(0, 3, 5, 1, 2, 4).reshape(b * n1 * n2, c, ws, ws)
    heads, d = m.num_head, m.dim_head
    qk = m.qk(xw).reshape(-1, 2, heads, d, ws * ws).permute(1, 0, 2, 4, 3)  # 2, B', heads, N, d
    attn = (qk[0] @ qk[1].transpose(-2, -1) * d**-0.5).softmax(-1)
    v = m.v(xw).reshape(-1, heads, d, ws * ws).transpose(-2, -1)
    out = (attn @ v).transpose(-2, -1).reshape(b, n1, n2, c, ws, ws).permute(0, 3, 4, 1, 5, 2).reshape(b, c, h, w)
    out = out + m.conv_local(out)
    return shortcut + m.proj(out)


def test_matches_reference_without_padding():
    torch.manual_seed(0)
    m = iRMB(64, 16).eval()
    x = torch.randn(2, 64, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _reference(m, x, 7), atol=1e-5, rtol=1e-5)


def test_padding_is_not_attended():
    """8x8 with window 7 pads to 14x14 (n1 = 2): window (0, 0) is the stride-2 grid of real pixels plus padding.

    With padding masked, attention there equals attention over the stride-2 sub-map alone (a 4x4 map, one window).
    """
    torch.manual_seed(0)
    m = iRMB(32, 16).eval()
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        full = m._window_attention(x)
        sub = m._window_attention(x[:, :, ::2, ::2].contiguous())
    torch.testing.assert_close(full[:, :, ::2, ::2], sub, atol=1e-5, rtol=1e-5)
