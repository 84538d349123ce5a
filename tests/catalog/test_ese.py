"""ESE: parameter count and the hard-sigmoid gate of CenterMask's eSE."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.ese import ESE


def test_parameter_count_is_one_full_width_conv_with_bias():
    c = 256
    assert sum(p.numel() for p in ESE(c).parameters()) == c * c + c  # 1x1 conv weights + biases, no reduction


def test_gate_is_hard_sigmoid_of_the_conv_on_the_mean():
    torch.manual_seed(0)
    m = ESE(16).eval()
    x = torch.randn(2, 16, 5, 7)
    s = torch.einsum("oc,nc->no", m.fc.weight[:, :, 0, 0], x.mean((2, 3))) + m.fc.bias
    expected = x * ((s + 3).clamp(0, 6) / 6)[:, :, None, None]
    torch.testing.assert_close(m(x), expected)
