"""SK: parameter count of the SKNet-50 unit and batch-1 training (BatchNorm on the squeezed vector)."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.sk import SK


def test_parameter_count_reference_configuration():
    c, m_branches, groups, d = 256, 2, 32, max(256 // 16, 32)
    branch = c * (c // groups) * 3 * 3 + 2 * c  # grouped 3x3 conv (no bias) + BN
    fc1 = c * d + 2 * d  # 1x1 conv (no bias) + BN
    fc2 = d * m_branches * c  # 1x1 conv (no bias)
    assert sum(p.numel() for p in SK(c).parameters()) == m_branches * branch + fc1 + fc2 == 62_528


def test_batch_one_training_uses_running_stats_for_squeeze_bn():
    m = SK(64).train()
    before = m.fc[1].running_mean.clone()
    x = torch.randn(1, 64, 8, 8, requires_grad=True)
    m(x).square().mean().backward()
    assert torch.equal(m.fc[1].running_mean, before)  # N x d x 1 x 1 at batch 1: no batch statistics
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_output_is_convex_mix_of_branches():
    # Softmax over branches: with identical branch weights the output equals one branch's output.
    torch.manual_seed(0)
    m = SK(64, 2, 32, 16, 32).eval()
    m.branches[1][0].dilation, m.branches[1][0].padding = (1, 1), (1, 1)
    m.branches[1].load_state_dict(m.branches[0].state_dict())
    x = torch.randn(2, 64, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), m.branches[0](x))
