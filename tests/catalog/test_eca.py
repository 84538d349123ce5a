"""ECA (Wang et al., CVPR 2020, Sec. 3.3): global average pool, a bias-free 1-D convolution of adaptive size k across
the channels, sigmoid, channel-wise rescale; k = |log2(C)/gamma + b/gamma|_odd with gamma=2, b=1 (Eq. 12: the nearest
odd number, taken upwards as the reference code does: t = int(|(log2 C + b)/gamma|), k = t if t is odd else t + 1)."""

from __future__ import annotations

import math

import torch

from attnsurgeon.catalog.modules.eca import ECA

# C -> k from Eq. 12 by hand: (log2 C + 1) / 2 truncated, then made odd
PAPER_K = {16: 3, 32: 3, 64: 3, 128: 5, 256: 5, 512: 5, 1024: 5, 2048: 7, 8: 3, 4: 1, 96: 3, 384: 5}


def test_adaptive_kernel_size_follows_eq_12():
    for c, k in PAPER_K.items():
        conv = ECA(c).conv
        assert conv.kernel_size == (k,) and conv.padding == ((k - 1) // 2,), c
        assert conv.bias is None and sum(p.numel() for p in ECA(c).parameters()) == k  # k weights, no bias
    assert ECA(256, k_size=3).conv.kernel_size == (3,)  # a fixed size, as the reference's eca_layer


def test_output_equals_the_paper_formula_computed_by_hand():
    c = 16  # k = 3
    w = [0.5, -1.0, 2.0]
    x = [[[float(ch % 5) - 1.5, 0.5 * ch] for _ in range(2)] for ch in range(c)]  # 2x2 maps
    m = ECA(c)
    with torch.no_grad():
        m.conv.weight.copy_(torch.tensor([[w]]))
        out = m(torch.tensor([x]))[0]

    y = [sum(sum(row) for row in x[ch]) / 4 for ch in range(c)]
    padded = [0.0, *y, 0.0]  # zero padding of (k - 1) / 2 on each side: each channel with its two neighbours
    conv = [sum(w[i] * padded[ch + i] for i in range(3)) for ch in range(c)]
    gate = [1 / (1 + math.exp(-v)) for v in conv]
    expected = [[[gate[ch] * v for v in row] for row in x[ch]] for ch in range(c)]
    torch.testing.assert_close(out, torch.tensor(expected))
