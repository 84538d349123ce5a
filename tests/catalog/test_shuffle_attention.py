"""Shuffle Attention: parameter count, the reference's channel-shuffle layout, and the group fallback."""

from __future__ import annotations

import math

import torch

from attnsurgeon.catalog.modules.shuffle_attention import ShuffleAttention


def test_parameter_count():
    # cweight, cbias, sweight, sbias and GroupNorm weight+bias, each c / (2G): 6 * c / (2G) = 3c / G.
    assert sum(p.numel() for p in ShuffleAttention(256, 8).parameters()) == 6 * (256 // 16) == 96
    assert sum(p.numel() for p in ShuffleAttention(256, 64).parameters()) == 6 * (256 // 128) == 12  # SA-ResNet


def test_gates_and_channel_shuffle_layout():
    # With both learned scales at 0 every gate is sigmoid(1); what remains is the reference's layout:
    # group split, then channel_shuffle(out, 2), so output channel 2k is input channel k and 2k+1 is c/2 + k.
    m = ShuffleAttention(32, 4)
    with torch.no_grad():
        m.sweight.zero_()
    x = torch.randn(2, 32, 3, 4)
    y = m(x)
    s = 1 / (1 + math.exp(-1))
    torch.testing.assert_close(y[:, 0::2], x[:, :16] * s)
    torch.testing.assert_close(y[:, 1::2], x[:, 16:] * s)


def test_group_fallback():
    assert ShuffleAttention(256, 8).groups == 8
    assert ShuffleAttention(48, 32).groups == 24  # largest g <= 32 with 2g | 48
    assert ShuffleAttention(24, 8).groups == 6
    m = ShuffleAttention(17, 8)  # odd channels: uneven halves and a permutation shuffle
    x = torch.randn(1, 17, 5, 5)
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert sorted(m.shuffle_index.tolist()) == list(range(17))
