"""FocusedLinearAttention: parameter count and the reference's token-form forward (positional encoding zero)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnsurgeon.catalog.modules.focused_linear_attention import FocusedLinearAttention


def test_parameter_count_reference_configuration():
    c, heads, k = 256, 8, 5
    d = c // heads
    q = c * c + c
    kv = c * 2 * c + 2 * c
    proj = c * c + c
    dwc = d * k * k + d  # depthwise on one head's channels, shared by heads
    scale = c
    # The reference adds num_patches * c for its positional table, dropped here.
    assert sum(p.numel() for p in FocusedLinearAttention(c).parameters()) == q + kv + proj + dwc + scale == 264256


def _reference(m: FocusedLinearAttention, x: torch.Tensor) -> torch.Tensor:
    b, c, h, w = x.shape
    t = x.flatten(2).transpose(1, 2)
    q = m.q(t)
    k, v = m.kv(t).reshape(b, -1, 2, c).permute(2, 0, 1, 3)
    scale = F.softplus(m.scale)
    q, k = F.relu(q) + 1e-6, F.relu(k) + 1e-6
    q, k = q / scale, k / scale
    qn, kn = q.norm(dim=-1, keepdim=True), k.norm(dim=-1, keepdim=True)
    q, k = q**3, k**3
    q, k = q / q.norm(dim=-1, keepdim=True) * qn, k / k.norm(dim=-1, keepdim=True) * kn
    heads = m.num_heads

    def split(z: torch.Tensor) -> torch.Tensor:
        return z.reshape(b, -1, heads, c // heads).transpose(1, 2).reshape(b * heads, -1, c // heads)

    q, k, v = split(q), split(k), split(v)
    z = 1 / (torch.einsum("bic,bc->bi", q, k.sum(dim=1)) + 1e-6)
    kv = torch.einsum("bjc,bjd->bcd", k, v)
    out = torch.einsum("bic,bcd,bi->bid", q, kv, z)
    fmap = m.dwc(v.transpose(1, 2).reshape(b * heads, c // heads, h, w)).flatten(2).transpose(1, 2)
    out = (out + fmap).reshape(b, heads, -1, c // heads).transpose(1, 2).reshape(b, -1, c)
    return m.proj(out).transpose(1, 2).reshape(b, c, h, w)


def test_matches_reference():
    torch.manual_seed(0)
    m = FocusedLinearAttention(64).eval()
    with torch.no_grad():
        m.scale.normal_()
        for size in [(9, 9), (6, 10), (1, 1)]:  # both association orders, and a non-square map
            x = torch.randn(2, 64, *size)
            torch.testing.assert_close(m(x), _reference(m, x), atol=1e-4, rtol=1e-4)
