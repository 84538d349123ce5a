"""NAM: parameter count and the |gamma| share weighting of the normalised features."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.nam import NAM


def test_parameter_count():
    assert sum(p.numel() for p in NAM(256).parameters()) == 2 * 256  # BatchNorm gamma and beta


def test_weights_are_gamma_share():
    torch.manual_seed(0)
    m = NAM(4).eval()
    with torch.no_grad():
        m.bn2.weight.copy_(torch.tensor([1.0, -3.0, 0.0, 4.0]))  # shares |gamma| / sum |gamma| = .125 .375 0 .5
        m.bn2.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    x = torch.randn(2, 4, 3, 3)
    share = torch.tensor([0.125, 0.375, 0.0, 0.5])[None, :, None, None]
    # Eval BatchNorm with fresh running statistics (mean 0, var 1): x / sqrt(1 + eps) * gamma + beta.
    bn = x / (1 + m.bn2.eps) ** 0.5 * m.bn2.weight.detach()[:, None, None] + m.bn2.bias.detach()[:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(m(x), x * torch.sigmoid(bn * share))


def test_batch_one_one_by_one_trains():
    m = NAM(16).train()
    m(torch.randn(1, 16, 1, 1)).sum().backward()
    assert m.bn2.weight.grad is not None and m.bn2.bias.grad.abs().sum() > 0
