"""Large Separable Kernel Attention.

Lau, Po, Rehman. "Large Separable Kernel Attention: Rethinking the Large Kernel Attention design in CNN",
Expert Systems with Applications, 2024. https://arxiv.org/abs/2309.01439
Reference: https://github.com/StevenLauHKHK/Large-Separable-Kernel-Attention (``models/van.py``, class ``LSKA``;
the VAN backbone there defaults to ``k_size=7``). The YOLOv8 LSKA tutorials paste the same module.

Deviations: the kernel-size table is data instead of an if-chain (same layers and parameters); the reference's
``u = x.clone()`` before the gating product is dropped (it changes nothing but costs a copy).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module

# k_size -> (local 1-D kernel, dilated 1-D kernel, dilation): the reference's decomposition of a k x k kernel into a
# (2d-1)-tap local depthwise conv and a ceil(k/d)-tap dilated depthwise conv, each split into 1xK and Kx1.
_LSKA_KERNELS: dict[int, tuple[int, int, int]] = {
    7: (3, 3, 2),
    11: (3, 5, 2),
    23: (5, 7, 3),
    35: (5, 11, 3),
    41: (5, 13, 3),
    53: (5, 17, 3),
}


def _dw_pair(dim: int, k: int, dilation: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """A depthwise 1xk then kx1 convolution with 'same' padding."""
    pad = (k - 1) // 2 * dilation
    h = nn.Conv2d(dim, dim, (1, k), padding=(0, pad), dilation=dilation, groups=dim)
    v = nn.Conv2d(dim, dim, (k, 1), padding=(pad, 0), dilation=dilation, groups=dim)
    return h, v


@register_module(
    aliases=("LSKAttention", "LargeSeparableKernelAttention"),
    category="convolutional attention",
    paper="Large Separable Kernel Attention: Rethinking the Large Kernel Attention design in CNN",
    venue="Expert Systems with Applications",
    year=2024,
    link="https://arxiv.org/abs/2309.01439",
    reference="https://github.com/StevenLauHKHK/Large-Separable-Kernel-Attention",
    deviations=("The reference's x.clone() before the gating product is dropped (no effect on the result).",),
    constraints=("k_size must be one of the reference's decompositions: 7, 11, 23, 35, 41, 53",),
    arg_help={"k_size": "effective large-kernel size k, decomposed into separable local + dilated depthwise convs"},
    choices={"k_size": (7, 11, 23, 35, 41, 53)},
    ranges={"k_size": {"odd": True}},
)
class LSKA(AttentionModule):
    """Large-kernel attention with every depthwise kernel split into cascaded horizontal and vertical 1-D kernels."""

    def __init__(self, c1: int, k_size: int = 7) -> None:
        super().__init__()
        if k_size not in _LSKA_KERNELS:
            raise ValueError(f"LSKA k_size must be one of {sorted(_LSKA_KERNELS)}, got {k_size}")
        k0, ks, dilation = _LSKA_KERNELS[k_size]
        self.k_size = k_size
        self.conv0h, self.conv0v = _dw_pair(c1, k0, 1)
        self.conv_spatial_h, self.conv_spatial_v = _dw_pair(c1, ks, dilation)
        self.conv1 = nn.Conv2d(c1, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.conv_spatial_v(self.conv_spatial_h(self.conv0v(self.conv0h(x))))
        return x * self.conv1(attn)
