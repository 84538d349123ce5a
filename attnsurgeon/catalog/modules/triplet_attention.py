"""Triplet Attention.

Misra, Nalamada, Arasanipalai, Hou. "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021.
https://arxiv.org/abs/2010.03045  DOI: 10.1109/WACV48630.2021.00318
Reference: https://github.com/landskape-ai/triplet-attention (triplet_attention.py, TripletAttention).

Deviations from the reference:
- No rotated copies of the input: each branch Z-pools along its own axis of x directly and the three gates are
  broadcast-summed, x * (g_hw + g_cw + g_hc) / 3, instead of permuting x twice, gating and permuting back. The
  convolutions see the same (rotated) pooled maps; parameter names equal the reference's, so checkpoints load.
- BatchNorm falls back to running statistics when a channel has a single value in training (batch 1, 1x1 map),
  where nn.BatchNorm2d raises.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d
from attnsurgeon.catalog.registry import register_module


class _Gate(nn.Module):
    """7x7 conv (2 -> 1, no bias) + BatchNorm on a Z-pooled (max, mean) map, then sigmoid."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        # Named like the reference's AttentionGate.conv (BasicConv: conv, bn), so its checkpoints load unchanged.
        self.conv = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(2, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False),
                bn=SafeBatchNorm2d(1, eps=1e-5, momentum=0.01),  # the reference's BasicConv settings
            )
        )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(pooled))


def _zpool(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The reference's ZPool along `dim`: max and mean stacked as two channels at dim 1."""
    return torch.stack((x.amax(dim=dim), x.mean(dim=dim)), dim=1)


@register_module(
    aliases=("TripletAttentionModule", "Triplet", "TA", "TripletAtt"),
    category="channel+spatial",
    paper="Rotate to Attend: Convolutional Triplet Attention Module",
    venue="WACV",
    year=2021,
    link="https://arxiv.org/abs/2010.03045",
    reference="https://github.com/landskape-ai/triplet-attention",
    deviations=(
        "Gates are computed from pooled views of x and broadcast-summed (x * mean of three gates) instead of "
        "permuting x into rotated copies; same math and weights, less memory traffic.",
        "BatchNorm uses running statistics when a channel has one value in training (batch 1, 1x1 map) instead of "
        "raising.",
    ),
    arg_help={"no_spatial": "drop the plain H-W spatial branch and average only the two rotated branches"},
)
class TripletAttention(AttentionModule):
    """Three-branch attention capturing (C,W), (H,C) and (H,W) interactions by rotated Z-pool + 7x7 conv gates."""

    def __init__(self, c1: int, no_spatial: bool = False) -> None:
        super().__init__()
        self.cw = _Gate()  # reference: x.permute(0, 2, 1, 3) -> pool over H, conv on the (C, W) plane
        self.hc = _Gate()  # reference: x.permute(0, 3, 2, 1) -> pool over W, conv on the (H, C) plane
        self.no_spatial = no_spatial
        if not no_spatial:
            self.hw = _Gate()  # plain spatial gate: pool over C, conv on the (H, W) plane

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Each gate sees the pooled map the reference builds from its rotated copy of x.
        g_cw = self.cw(_zpool(x, 2)).transpose(1, 2)  # pool over H: (N,2,C,W) -> gate (N,C,1,W)
        g_hc = self.hc(_zpool(x, 3).transpose(2, 3)).permute(0, 3, 2, 1)  # pool over W: (N,2,H,C) -> (N,C,H,1)
        if self.no_spatial:
            return x * ((g_cw + g_hc) * 0.5)
        g_hw = self.hw(_zpool(x, 1))  # pool over C: (N,2,H,W) -> (N,1,H,W)
        return x * ((g_cw + g_hc + g_hw) * (1 / 3))
