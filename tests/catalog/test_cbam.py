"""CBAM: parameter counts for the seed's and the paper's configuration; equals the two-pass formulation."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.cbam import CBAM


def test_parameter_count():
    c = 256
    seed = 2 * c * (c // 8) + 2 * 7 * 7  # seed 002: ratio 8, bias-free 1x1 MLP, bias-free 7x7 conv over 2 maps
    paper = 2 * c * (c // 16) + 2 * 7 * 7
    assert sum(p.numel() for p in CBAM(c, 8, 7).parameters()) == seed == 16_482
    assert sum(p.numel() for p in CBAM(c).parameters()) == paper == 8_290


def test_equals_channel_then_spatial_formula():
    torch.manual_seed(0)
    m = CBAM(32, 8, 7).eval()
    x = torch.randn(2, 32, 9, 11)
    with torch.no_grad():
        mlp = lambda t: m.fc2(torch.relu(m.fc1(t)))  # noqa: E731
        ca = (mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True))).sigmoid()
        x1 = x * ca
        sa = m.spatial(torch.cat((x1.mean(1, keepdim=True), x1.amax(1, keepdim=True)), 1)).sigmoid()
        torch.testing.assert_close(m(x), x1 * sa)
