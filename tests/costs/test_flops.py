"""Exact FLOPs of single modules against counts worked out by hand (``flops.exact_flops``, which ``profile``, the
catalog's reference costs and the sweep use)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.costs import flops

pytestmark = pytest.mark.usefixtures("one_thread")  # figures, not speed (conftest.one_thread)


def flops_of(module: nn.Module, *inputs: torch.Tensor) -> int:
    class Wrap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
            return self.inner(*args)

    return flops.exact_flops(Wrap(), inputs)[0]  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------------------
# Exact FLOPs of single modules, worked out by hand (FLOPs = 2 x multiply-accumulates; bias, elementwise, softmax,
# pooling, norms not counted). Reference point: C=256, 20x20, batch 1.

C, H, W = 256, 20, 20
HW = H * W


@pytest.fixture(scope="module")
def x256() -> torch.Tensor:
    return torch.rand(1, C, H, W)


def test_sdpa_on_cpu_is_counted_as_two_matmuls():
    class SDPA(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    b, heads, length, source, e = 2, 4, 64, 80, 32
    q, k, v = torch.rand(b, heads, length, e), torch.rand(b, heads, source, e), torch.rand(b, heads, source, e)
    hand = 2 * b * heads * length * source * (e + e)  # q @ k^T and attn @ v
    assert flops_of(SDPA(), q, k, v) == hand
    # what the custom formula is for: PyTorch's own counter sees nothing in the CPU flash kernel
    from torch.utils.flop_counter import FlopCounterMode

    plain = FlopCounterMode(display=False)
    with plain, torch.no_grad():
        SDPA()(q, k, v)
    assert plain.get_total_flops() in (0, hand)


def test_sdpa_with_other_value_width():
    class SDPA(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.rand(1, 2, 16, 8), torch.rand(1, 2, 24, 8), torch.rand(1, 2, 24, 12)
    assert flops_of(SDPA(), q, k, v) == 2 * 1 * 2 * 16 * 24 * (8 + 12)


def test_sdpa_cpu_formula_directly():
    assert flops._sdpa_cpu_flop((2, 4, 64, 32), (2, 4, 80, 32), (2, 4, 80, 48)) == 2 * 2 * 4 * 64 * 80 * (32 + 48)


def test_se_flops_are_its_two_linear_layers(x256):
    se = REGISTRY.load_class("SE")(C)
    hidden = C // 16
    assert flops.exact_flops(se, x256)[0] == 2 * (C * hidden + hidden * C)


def test_eca_flops_are_its_conv1d(x256):
    from attnsurgeon.catalog.modules.eca import eca_kernel_size

    k = eca_kernel_size(C)
    assert k == 5
    eca = REGISTRY.load_class("ECA")(C)
    assert flops.exact_flops(eca, x256)[0] == 2 * C * k  # one output channel per position, 1 input channel


def test_cbam_flops_are_its_convolutions(x256):
    cbam = REGISTRY.load_class("CBAM")(C)
    hidden = C // 16
    mlp = 2 * 2 * (C * hidden + hidden * C)  # shared MLP (1x1 convs) on avg and max descriptors: a batch of 2
    spatial = 2 * HW * (2 * 7 * 7)  # 7x7 conv, 2 -> 1 channels, at every pixel
    assert flops.exact_flops(cbam, x256)[0] == mlp + spatial


def test_msda_flops_term_by_term(x256):
    msda = REGISTRY.load_class("MSDA")(C)  # 8 heads of 32 channels, 3x3 neighbourhoods at dilations 1, 2, 3
    heads, head_dim, kk = 8, C // 8, 3 * 3
    qkv = 2 * HW * C * 3 * C  # 1x1 conv C -> 3C
    proj = 2 * HW * C * C  # Linear C -> C per pixel
    logits = 2 * heads * HW * kk * head_dim  # q . k over each pixel's k*k neighbours, every head
    mix = 2 * heads * HW * kk * head_dim  # attn @ v
    assert flops.exact_flops(msda, x256)[0] == qkv + proj + logits + mix


def test_exact_flops_scale_with_size_and_batch():
    conv = nn.Conv2d(8, 16, 3, padding=1)
    assert flops.exact_flops(conv, torch.rand(3, 8, 10, 12))[0] == 2 * 3 * 16 * 10 * 12 * 8 * 3 * 3
