"""ELA: parameter counts of the paper's T/B/S/L configurations and the GroupNorm fallback."""

from __future__ import annotations

import pytest
import torch

from attnsurgeon.catalog.modules.ela import ELA


@pytest.mark.parametrize(
    ("phi", "expected"),
    [
        ("T", 256 * 5 + 2 * 256),  # depthwise k5, no bias; GroupNorm affine
        ("B", 256 * 7 + 2 * 256),  # depthwise k7
        ("S", 256 * 8 * 5 + 2 * 256),  # 32 groups of 8 channels, k5
        ("L", 256 * 8 * 7 + 2 * 256),
    ],
)
def test_parameter_counts(phi, expected):
    assert sum(p.numel() for p in ELA(256, phi).parameters()) == expected


def test_groupnorm_falls_back_to_a_divisor():
    m = ELA(40)  # 16 does not divide 40
    assert m.gn.num_groups == 10
    assert m(torch.randn(1, 40, 9, 11)).shape == (1, 40, 9, 11)


def test_attention_is_separable_in_rows_and_columns():
    torch.manual_seed(0)
    m = ELA(32).eval()
    x = torch.rand(1, 32, 6, 9) + 0.5
    a = m(x) / x  # the attention map: a_h(row) * a_w(col) per channel, so rank one per channel
    ranks = torch.linalg.matrix_rank(a[0].double(), atol=1e-6)
    assert (ranks == 1).all()
