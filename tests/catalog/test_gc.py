"""GC: parameter count, identity at init with the reference's zero_init, and why the default is zero_init=False."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.gc import GC


def test_parameter_count_reference_configuration():
    c, planes = 256, 256 // 16
    conv_mask = c * 1 + 1
    transform = (c * planes + planes) + 2 * planes + (planes * c + c)  # conv, LayerNorm([planes,1,1]), conv
    assert sum(p.numel() for p in GC(c).parameters()) == conv_mask + transform == 8753


def test_zero_init_starts_as_identity_and_starves_earlier_layers():
    torch.manual_seed(0)
    m = GC(64, 0.0625, "att", "channel_add", True)
    x = torch.randn(2, 64, 7, 9)
    y = m(x)
    torch.testing.assert_close(y, x)  # the paper's initialisation: the block starts as identity
    y.square().mean().backward()
    assert m.conv_mask.weight.grad.abs().sum() == 0  # ...so the context path gets no gradient at step 0
    assert m.channel_add_conv[-1].weight.grad.abs().sum() > 0


def test_default_is_not_identity_and_all_parameters_train():
    torch.manual_seed(0)
    m = GC(64)
    x = torch.randn(2, 64, 7, 9)
    y = m(x)
    assert not torch.allclose(y, x)
    y.square().mean().backward()
    assert all(p.grad.abs().sum() > 0 for p in m.parameters())
