"""GAM: reference parameter count and batch-1 training on a 1x1 map."""

from __future__ import annotations

import torch

from attnsurgeon.catalog.modules.gam import GAM


def test_parameter_count_reference_configuration():
    c, r = 256, 4
    h = c // r
    mlp = (c * h + h) + (h * c + c)  # two biased Linear layers
    spatial = (c * h * 49 + h) + 2 * h + (h * c * 49 + c) + 2 * c  # 7x7 conv + BN, 7x7 conv + BN
    assert sum(p.numel() for p in GAM(c, r).parameters()) == mlp + spatial == 1_639_680


def test_channel_gate_is_a_sigmoid_of_a_per_pixel_mlp():
    # With the spatial branch forced to gate 1, the output is x * sigmoid(MLP(x)) evaluated pixel by pixel.
    torch.manual_seed(0)
    m = GAM(16, 4).eval()
    with torch.no_grad():
        m.spatial_attention[-1].bias.fill_(50.0)  # sigmoid(~50) == 1
    x = torch.randn(2, 16, 5, 6)
    expected = x * torch.sigmoid(m.channel_attention(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


def test_batch_one_one_by_one_trains():
    m = GAM(32).train()
    x = torch.randn(1, 32, 1, 1, requires_grad=True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all()
