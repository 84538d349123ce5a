"""Triplet Attention: parameter count and equality with the reference's rotate-gate-rotate-back formulation."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.triplet_attention import TripletAttention


def test_parameter_count():
    per_gate = 2 * 1 * 7 * 7 + 2  # 7x7 conv 2 -> 1 without bias, BatchNorm(1)
    assert sum(p.numel() for p in TripletAttention(256).parameters()) == 3 * per_gate == 300
    assert sum(p.numel() for p in TripletAttention(256, True).parameters()) == 2 * per_gate


def _gate(gate: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
    pooled = torch.cat([t.max(dim=1, keepdim=True)[0], t.mean(dim=1, keepdim=True)], dim=1)
    return t * torch.sigmoid(gate.conv.bn(gate.conv.conv(pooled)))


def test_state_dict_names_match_the_reference():
    names = set(TripletAttention(8).state_dict())
    assert {"cw.conv.conv.weight", "hc.conv.bn.weight", "hw.conv.bn.running_var"} <= names


def test_equals_rotated_reference_form():
    torch.manual_seed(0)
    m = TripletAttention(12).eval()
    for p in m.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(2, 12, 5, 7)  # H != W != C so a wrong rotation cannot pass
    a = _gate(m.cw, x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
    b = _gate(m.hc, x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
    c = _gate(m.hw, x)
    with torch.no_grad():
        torch.testing.assert_close(m(x), (a + b + c) / 3)
