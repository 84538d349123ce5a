"""CPCA: parameter count of the reference RepBlock (one 1x1 conv shared three times)."""

from __future__ import annotations

from attnsurgeon.catalog.modules.cpca import CPCA


def test_parameter_count_reference_configuration():
    c, hidden = 256, 256 // 4
    mlp = (c * hidden + hidden) + (hidden * c + c)
    depthwise = (c * 25 + c) + 2 * (c * 7 + c) + 2 * (c * 11 + c) + 2 * (c * 21 + c)
    pointwise = c * c + c  # a single shared 1x1 conv, as in the reference
    assert sum(p.numel() for p in CPCA(c).parameters()) == mlp + depthwise + pointwise == 127040
