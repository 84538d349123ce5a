"""SE (Hu et al., CVPR 2018, Sec. 3): squeeze = global average pool, excitation = FC(C -> C/r), ReLU, FC(C/r -> C),
sigmoid, then each channel rescaled by its gate. Weights set by hand, the output computed by hand in plain Python."""

from __future__ import annotations

import math

import torch

from attnsurgeon.catalog.modules.se import SE


def test_parameter_count_is_two_bias_free_fc_layers():
    # 2 * C * C / r weights; no biases (the bias-free PyTorch form the module docstring cites)
    for c, r in ((256, 16), (64, 4), (1024, 16)):
        assert sum(p.numel() for p in SE(c, r).parameters()) == 2 * c * c // r
    assert sum(p.numel() for p in SE(8, 16).parameters()) == 2 * 8 * 1  # bottleneck floor of one unit


def test_output_equals_the_paper_formula_computed_by_hand():
    c, r = 4, 2
    w1 = [[0.5, -1.0, 0.25, 0.0], [1.0, 1.0, -0.5, 2.0]]  # (C/r) x C
    w2 = [[1.0, 0.0], [-1.0, 0.5], [0.0, -2.0], [0.25, 0.25]]  # C x (C/r)
    # channel k is constant k+1 except one pixel, so its mean is known exactly
    x = [[[float(k + 1)] * 3 for _ in range(2)] for k in range(c)]
    x[2][1][2] = 9.0
    m = SE(c, r)
    with torch.no_grad():
        m.fc[0].weight.copy_(torch.tensor(w1))
        m.fc[2].weight.copy_(torch.tensor(w2))
        out = m(torch.tensor([x]))[0]

    z = [sum(sum(row) for row in x[k]) / 6 for k in range(c)]  # squeeze: z = (1, 2, 4, 4)
    hidden = [max(0.0, sum(w1[j][k] * z[k] for k in range(c))) for j in range(c // r)]  # ReLU
    gate = [1 / (1 + math.exp(-sum(w2[k][j] * hidden[j] for j in range(c // r)))) for k in range(c)]
    expected = [[[gate[k] * v for v in row] for row in x[k]] for k in range(c)]
    assert z == [1.0, 2.0, 4.0, 4.0] and hidden == [0.0, 9.0]  # the ReLU cut the first unit
    torch.testing.assert_close(out, torch.tensor(expected))
