"""BAM: the reference's parameter count, the output range, and batch-1 training."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.bam import BAM


def test_parameter_count_reference_configuration():
    c, h = 256, 256 // 16
    channel = (c * h + h) + 2 * h + (h * c + c)  # Linear c->h, BatchNorm1d(h), Linear h->c
    spatial = (c * h + h) + 2 * h + 2 * (9 * h * h + h + 2 * h) + (h + 1)  # 1x1 reduce+BN, 2x (3x3 dil + BN), 1x1 -> 1
    assert sum(p.numel() for p in BAM(c).parameters()) == channel + spatial == 17_361
    assert sum(p.numel() for p in BAM(c, combine="product").parameters()) == 17_361


def test_gate_between_one_and_two():
    torch.manual_seed(0)
    x = torch.rand(2, 32, 9, 13) + 0.1  # positive, so y / x is the gate
    for combine in ("sum", "product"):
        gate = BAM(32, combine=combine).eval()(x) / x
        assert (gate >= 1).all() and (gate <= 2).all()


def test_trains_at_batch_one_with_1x1_map():
    m = BAM(64).train()
    m(torch.randn(1, 64, 1, 1)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
