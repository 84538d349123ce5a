"""LSKA: parameter count per k_size and the receptive field it claims."""

from __future__ import annotations

import pytest
import torch

from attnsurgeon.catalog.modules.lska import LSKA

# k_size -> (local taps, dilated taps, dilation), as in the reference's if-chain
TABLE = {7: (3, 3, 2), 11: (3, 5, 2), 23: (5, 7, 3), 35: (5, 11, 3), 41: (5, 13, 3), 53: (5, 17, 3)}


@pytest.mark.parametrize("k_size", sorted(TABLE))
def test_parameter_count(k_size):
    c = 64
    k0, ks, _ = TABLE[k_size]
    expected = 2 * (c * k0 + c) + 2 * (c * ks + c) + (c * c + c)  # 4 depthwise 1-D convs + 1x1 conv, with biases
    assert sum(p.numel() for p in LSKA(c, k_size).parameters()) == expected


@pytest.mark.parametrize("k_size", sorted(TABLE))
def test_receptive_field_is_k_by_k(k_size):
    torch.manual_seed(0)
    m = LSKA(2, k_size).double()
    s = k_size + 6
    x = torch.randn(1, 2, s, s, dtype=torch.double, requires_grad=True)
    attn = m.conv1(m.conv_spatial_v(m.conv_spatial_h(m.conv0v(m.conv0h(x)))))
    attn[0, 0, s // 2, s // 2].backward()
    support = x.grad.abs().sum(1)[0] > 0
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == k_size and cols.max() - cols.min() + 1 == k_size
