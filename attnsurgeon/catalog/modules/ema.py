"""EMA: Efficient Multi-Scale Attention with cross-spatial learning.

Ouyang, He, Zhang, Luo, Guo, Zhan, Huang. "Efficient Multi-Scale Attention Module with Cross-Spatial Learning",
ICASSP 2023. https://arxiv.org/abs/2305.13563  DOI: 10.1109/ICASSP49357.2023.10096516
Reference: https://github.com/YOLOonMe/EMA-attention-module (file EMA_attention_module, class EMA, factor=32).

Deviations from the reference:
- Group fallback: the reference asserts only c1 // factor > 0 and its reshape fails when factor does not divide c1;
  here the group count is the largest divisor of c1 that is <= factor (e.g. c1=48 -> 24 groups, c1=16 -> 16).
- Apart from that the computation, initialisation and parameters are the reference's (GroupNorm with one channel
  per group, i.e. an affine instance norm over the c1/groups channels of a group).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("EMAttention", "EMA_attention", "EfficientMultiScaleAttention", "EMAAttention", "EMA_Module"),
    category="channel+spatial",
    paper="Efficient Multi-Scale Attention Module with Cross-Spatial Learning",
    venue="ICASSP",
    year=2023,
    link="https://arxiv.org/abs/2305.13563",
    reference="https://github.com/YOLOonMe/EMA-attention-module",
    deviations=(
        "When factor does not divide c1, the group count falls back to the largest divisor of c1 that is <= factor "
        "(the reference fails in its reshape).",
    ),
    constraints=("groups = largest divisor of c1 that is <= factor (factor itself when it divides c1)",),
    arg_help={"factor": "number of channel groups G (sub-features); each group has c1/G channels"},
    ranges={"factor": {"min": 1, "below_c1": True}},
)
class EMA(AttentionModule):
    """Grouped multi-scale attention: a 1x1 (directional pooling) and a 3x3 branch reweight each other across space."""

    def __init__(self, c1: int, factor: int = 32) -> None:
        super().__init__()
        self.groups = largest_divisor_at_most(c1, factor)
        cg = c1 // self.groups
        self.agp = nn.AdaptiveAvgPool2d(1)
        self.gn = nn.GroupNorm(cg, cg)  # one channel per norm group, as in the reference
        self.conv1x1 = nn.Conv2d(cg, cg, kernel_size=1)
        self.conv3x3 = nn.Conv2d(cg, cg, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        gx = x.reshape(b * self.groups, c // self.groups, h, w)
        # 1x1 branch: pool along W and along H, share one 1x1 conv over the concatenated descriptors.
        x_h = gx.mean(dim=3, keepdim=True)  # (bg, cg, h, 1)
        x_w = gx.mean(dim=2, keepdim=True).transpose(2, 3)  # (bg, cg, w, 1)
        hw = self.conv1x1(torch.cat([x_h, x_w], dim=2))
        a_h, a_w = torch.split(hw, [h, w], dim=2)
        # torch.group_norm, not self.gn(...): F.group_norm refuses one value per group in training (batch 1, 1x1 map,
        # a single group), where the normalised value is simply 0 and the result the GN bias.
        x1 = gx * a_h.sigmoid() * a_w.transpose(2, 3).sigmoid()
        x1 = torch.group_norm(x1, self.gn.num_groups, self.gn.weight, self.gn.bias, self.gn.eps)
        x2 = self.conv3x3(gx)
        # Cross-spatial learning: each branch's pooled channel softmax weighs the other branch's spatial map.
        s1 = self.agp(x1).flatten(1).softmax(dim=-1).unsqueeze(1)  # (bg, 1, cg)
        s2 = self.agp(x2).flatten(1).softmax(dim=-1).unsqueeze(1)
        weights = torch.matmul(s1, x2.flatten(2)) + torch.matmul(s2, x1.flatten(2))  # (bg, 1, hw)
        return (gx * weights.reshape(b * self.groups, 1, h, w).sigmoid()).reshape(b, c, h, w)
