"""DAttention: parameter count, head/group fallback, and that zero offsets sample the map exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnsurgeon.catalog.modules.dattention import DAttention


def test_parameter_count_yolo_configuration():
    c, groups = 256, 4
    gc = c // groups
    offset_net = (gc * 9 + gc) + 2 * gc + gc * 2  # depthwise 3x3, LayerNorm, 1x1 -> 2 (no bias)
    projections = 4 * (c * c + c)  # q, k, v, out
    dwc_pe = c * 9 + c
    assert sum(p.numel() for p in DAttention(c).parameters()) == offset_net + projections + dwc_pe == 266624


def test_heads_and_groups_fall_back_to_divisors():
    m = DAttention(36)  # 8 heads do not divide 36
    assert (m.n_heads, m.n_groups) == (6, 3)
    assert m(torch.randn(1, 36, 5, 7)).shape == (1, 36, 5, 7)


def test_zero_offsets_sample_every_pixel_centre():
    """The reference's reference points are half a pixel off; here zero offsets reproduce the map exactly."""
    torch.manual_seed(0)
    m = DAttention(32).eval()
    torch.nn.init.zeros_(m.conv_offset[-1].weight)
    for h, w in [(1, 1), (7, 5), (15, 20)]:
        x = torch.randn(2, 32, h, w)
        grid = m.sample_positions(m.proj_q(x))
        sampled = F.grid_sample(x.reshape(8, 8, h, w), grid, align_corners=False)
        torch.testing.assert_close(sampled, x.reshape(8, 8, h, w))


def test_offsets_are_bounded_by_the_range_factor():
    m = DAttention(32, 8, 4, 1, 2.0).eval()
    with torch.no_grad():
        m.conv_offset[-1].weight.mul_(1000.0)  # saturate tanh
        grid = m.sample_positions(m.proj_q(torch.randn(1, 32, 10, 10)))
    centres = (torch.arange(10) + 0.5) / 10 * 2 - 1
    assert (grid[..., 0] - centres.view(1, 1, 10)).abs().max() <= 2.0 / 10 + 1e-6  # factor / Wk in normalised units
