"""SENetV2: parameter count of the SaE module and the reference's residual output x + x * s."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.senetv2 import SENetV2


def test_parameter_count_reference_configuration():
    c, r, card = 256, 16, 4
    hidden = c // r
    branches = card * (c * hidden + hidden)  # four Dense(C/r) branches with bias
    excite = card * hidden * c + c  # Dense(C) on the concatenation, with bias
    assert sum(p.numel() for p in SENetV2(c).parameters()) == branches + excite == 33088


def test_output_is_identity_plus_scaled_features():
    torch.manual_seed(0)
    m = SENetV2(32).eval()
    x = torch.randn(2, 32, 6, 6)
    s = m.excite(torch.relu(m.branches(x.mean((2, 3))))).sigmoid()[:, :, None, None]
    torch.testing.assert_close(m(x), x + x * s)
    plain = SENetV2(32, 16, 4, False).eval()
    plain.load_state_dict(m.state_dict())
    torch.testing.assert_close(plain(x), x * s)
