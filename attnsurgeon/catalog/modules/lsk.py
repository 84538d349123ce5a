"""Large Selective Kernel (LSK) block.

Li, Hou, Wang, Gao, Xu, Yang, Li. "Large Selective Kernel Network for Remote Sensing Object Detection", ICCV 2023.
https://arxiv.org/abs/2303.09030  Reference: https://github.com/zcablii/LSKNet
(``mmrotate/models/backbones/lsknet.py``, classes ``LSKblock`` and ``Attention``).

``LSKblock``: a depthwise 5x5 convolution and, on its output, a depthwise 7x7 convolution with dilation 3 (receptive
field 23) give two large-kernel features; 1x1 convolutions halve each; channel-wise average and max of their
concatenation go through a 7x7 convolution (2 -> 2) and a sigmoid, giving one spatial selection mask per kernel; the
masked sum is lifted back to C channels by a 1x1 convolution and multiplies the input. With ``wrap=True`` the block is
wrapped as in LSKNet's ``Attention`` (and the YOLO ports' ``LSKBlock``): 1x1 projection, GELU, LSKblock, 1x1
projection, plus the input.

Deviations: none. The reference's ``x.clone()`` for the wrapper's shortcut is dropped (no effect on the result).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


class _LSKCore(nn.Module):
    """The reference's LSKblock: spatial selection between two large-kernel depthwise branches."""

    def __init__(self, c: int) -> None:
        super().__init__()
        half = max(c // 2, 1)
        self.conv0 = nn.Conv2d(c, c, 5, padding=2, groups=c)
        self.conv_spatial = nn.Conv2d(c, c, 7, padding=9, groups=c, dilation=3)
        self.conv1 = nn.Conv2d(c, half, 1)
        self.conv2 = nn.Conv2d(c, half, 1)
        self.conv_squeeze = nn.Conv2d(2, 2, 7, padding=3)
        self.conv = nn.Conv2d(half, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a1 = self.conv0(x)
        a2 = self.conv_spatial(a1)
        a1, a2 = self.conv1(a1), self.conv2(a2)
        # mean/max over the concatenation of both branches, without materialising it.
        n = a1.shape[1] + a2.shape[1]
        avg = (a1.sum(1, keepdim=True) + a2.sum(1, keepdim=True)) / n
        mx = torch.maximum(a1.amax(1, keepdim=True), a2.amax(1, keepdim=True))
        sig = self.conv_squeeze(torch.cat((avg, mx), 1)).sigmoid()
        return x * self.conv(a1 * sig[:, 0:1] + a2 * sig[:, 1:2])


@register_module(
    aliases=("LSKblock", "LargeSelectiveKernel", "LSKNetAttention"),
    category="convolutional attention",
    paper="Large Selective Kernel Network for Remote Sensing Object Detection",
    venue="ICCV",
    year=2023,
    link="https://arxiv.org/abs/2303.09030",
    reference="https://github.com/zcablii/LSKNet",
    deviations=(
        "None. wrap=True adds LSKNet's Attention wrapper (1x1 proj, GELU, LSKblock, 1x1 proj, + input), which the "
        "YOLO ports register as LSKBlock; the default is the bare LSKblock.",
    ),
    constraints=("Odd channel counts halve to C // 2 in the two branches, as in the reference",),
    arg_help={"wrap": "wrap as LSKNet's Attention: 1x1 proj + GELU before, 1x1 proj + residual after"},
)
class LSK(AttentionModule):
    """Spatial selection between a 5x5 and a dilated 7x7 depthwise kernel by a mask from channel-pooled features."""

    def __init__(self, c1: int, wrap: bool = False) -> None:
        super().__init__()
        self.wrap = wrap
        self.spatial_gating_unit = _LSKCore(c1)
        if wrap:
            self.proj_1 = nn.Conv2d(c1, c1, 1)
            self.proj_2 = nn.Conv2d(c1, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.wrap:
            return self.spatial_gating_unit(x)
        return self.proj_2(self.spatial_gating_unit(F.gelu(self.proj_1(x)))) + x
