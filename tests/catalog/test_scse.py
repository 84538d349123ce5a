"""scSE: the reference's parameter count and the max-out of the channel- and spatially-gated tensors."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.scse import scSE


def test_parameter_count_reference_configuration():
    c, h = 256, 256 // 2  # reference reduction_ratio = 2
    expected = (c * h + h) + (h * c + c) + (c + 1)  # fc1 + fc2 (Linear with bias) + sSE 1x1 conv c -> 1 with bias
    assert sum(p.numel() for p in scSE(c).parameters()) == expected == 66_177


def test_max_out_and_add():
    torch.manual_seed(0)
    m = scSE(16).eval()
    x = torch.randn(2, 16, 6, 5)
    with torch.no_grad():
        cse = x * m.fc2(torch.relu(m.fc1(x.mean((2, 3), keepdim=True)))).sigmoid()
        sse = x * m.spatial(x).sigmoid()
        torch.testing.assert_close(m(x), torch.maximum(cse, sse))
        m.combine = "add"
        torch.testing.assert_close(m(x), cse + sse)
