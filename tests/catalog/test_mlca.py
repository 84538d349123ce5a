"""MLCA: parameter count, exportable adaptive pooling equals PyTorch's, and the module equals the reference math."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnsurgeon.catalog.modules.building_blocks import adaptive_avg_pool2d_exportable
from attnsurgeon.catalog.modules.mlca import MLCA


def test_parameter_count_reference_configuration():
    # ECA rule at C=256: t = int((log2 256 + 1) / 2) = 4 -> k = 5; two bias-free Conv1d(1, 1, 5).
    assert sum(p.numel() for p in MLCA(256).parameters()) == 5 + 5


def test_exportable_pool_equals_adaptive_pool():
    x = torch.randn(2, 3, 15, 20)
    for size in [(5, 5), (1, 1), (4, 7), (15, 20), (40, 33)]:
        torch.testing.assert_close(adaptive_avg_pool2d_exportable(x, *size), F.adaptive_avg_pool2d(x, size))


def test_matches_reference_forward():
    torch.manual_seed(0)
    m = MLCA(64).eval()
    x = torch.randn(2, 64, 15, 20)
    b, c, h, w = x.shape
    s = 5
    local = F.adaptive_avg_pool2d(x, s)
    glob = F.adaptive_avg_pool2d(local, 1)
    y_local = m.conv_local(local.view(b, c, -1).transpose(-1, -2).reshape(b, 1, -1))
    y_global = m.conv(glob.view(b, c, -1).transpose(-1, -2))
    att_local = y_local.reshape(b, s * s, c).transpose(-1, -2).view(b, c, s, s).sigmoid()
    att_global = F.adaptive_avg_pool2d(y_global.view(b, -1).unsqueeze(-1).unsqueeze(-1).sigmoid(), [s, s])
    expected = x * F.adaptive_avg_pool2d(att_global * 0.5 + att_local * 0.5, [h, w])
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected)
