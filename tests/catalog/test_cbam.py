"""CBAM: parameter counts for the YOLO form's and the paper's configuration; equals the two-pass formulation."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.cbam import CBAM


def test_parameter_count():
    c = 256
    yolo_form = 2 * c * (c // 8) + 2 * 7 * 7  # cbam_block of nets/attention.py: ratio 8, bias-free MLP and 7x7 conv
    paper = 2 * c * (c // 16) + 2 * 7 * 7
    assert sum(p.numel() for p in CBAM(c, 8, 7).parameters()) == yolo_form == 16_482
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
