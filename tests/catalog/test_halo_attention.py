"""HaloAttention: padded keys get no weight, interior blocks do not attend uniformly, maths equal a naive loop."""

from __future__ import annotations

import pytest
import torch

from attnsurgeon.catalog.modules.halo_attention import HaloAttention


def _real_key_mask(h: int, w: int, block: int, halo: int) -> torch.Tensor:
    """(blocks, window^2) True where the window position is a pixel of the image, from coordinates alone."""
    window = block + 2 * halo
    nh, nw = -(-h // block), -(-w // block)
    rows = []
    for bi in range(nh):
        for bj in range(nw):
            row = []
            for u in range(window):
                for v in range(window):
                    r, c = bi * block - halo + u, bj * block - halo + v
                    row.append(0 <= r < h and 0 <= c < w)
            rows.append(row)
    return torch.tensor(rows)


def test_padded_keys_get_zero_weight():
    torch.manual_seed(0)
    m = HaloAttention(16, 2, 1, 8, 2).eval()
    h, w = 5, 7  # not multiples of the block: divisibility padding must be masked as well as the halo
    with torch.no_grad():
        attn = m.attention_weights(torch.randn(2, 16, h, w))  # N heads blocks block^2 window^2
    real = _real_key_mask(h, w, 2, 1)
    assert attn.shape[2:] == (real.shape[0], 4, 16)
    padded = attn.masked_select(~real[None, None, :, None, :].expand_as(attn))
    assert padded.numel() > 0 and padded.abs().max() == 0
    torch.testing.assert_close(attn.sum(-1), torch.ones_like(attn.sum(-1)))


def test_interior_rows_are_not_uniform():
    """The reference's inverted mask sets every logit of an interior block to -max: uniform 1/16 rows."""
    torch.manual_seed(0)
    m = HaloAttention(16, 2, 1, 8, 2).eval()
    with torch.no_grad():
        attn = m.attention_weights(torch.randn(1, 16, 8, 8))
    interior = attn[:, :, 1 * 4 + 1]  # block (1, 1) of the 4x4 block grid: its whole window is inside the image
    assert (interior.amax(-1) - interior.amin(-1)).min() > 1e-3
    assert not torch.allclose(interior, torch.full_like(interior, 1 / 16))


@pytest.mark.parametrize(("block", "halo", "h", "w"), [(2, 1, 5, 6), (3, 2, 7, 8), (2, 0, 5, 5), (4, 1, 3, 2)])
def test_matches_naive_per_pixel_attention(block, halo, h, w):
    torch.manual_seed(0)
    d, heads, c = 4, 2, 6
    m = HaloAttention(c, block, halo, d, heads).eval()
    x = torch.randn(1, c, h, w)
    with torch.no_grad():
        y = m(x)
        window = block + 2 * halo
        out = torch.zeros(h, w, heads * d)
        for r in range(h):
            for col in range(w):
                q = m.to_q(x[0, :, r, col]).view(heads, d) * d**-0.5
                qr, qc = r % block, col % block
                r0, c0 = r - qr - halo, col - qc - halo  # window origin
                logits, values = [], []
                for u in range(window):
                    for v in range(window):
                        kr, kc = r0 + u, c0 + v
                        if not (0 <= kr < h and 0 <= kc < w):
                            continue
                        k, val = m.to_kv(x[0, :, kr, kc]).view(2, heads, d)
                        rel = m.rel_height[u - qr + window - 1] + m.rel_width[v - qc + window - 1]
                        logits.append((q * (k + rel)).sum(-1))
                        values.append(val)
                a = torch.stack(logits, -1).softmax(-1)  # heads x keys
                out[r, col] = torch.einsum("hk,khd->hd", a, torch.stack(values)).reshape(-1)
        expected = m.to_out(out).permute(2, 0, 1)[None]
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-4)


def test_parameter_count_matches_reference():
    c1, dim_head, heads, block, halo = 256, 64, 8, 2, 1
    inner = dim_head * heads
    window = block + 2 * halo
    expected = c1 * inner + c1 * 2 * inner + (inner * c1 + c1) + 2 * (2 * window - 1) * dim_head
    assert sum(p.numel() for p in HaloAttention(c1).parameters()) == expected == 525_440
