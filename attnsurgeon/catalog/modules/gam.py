"""GAM: Global Attention Mechanism.

Liu, Shao, Hoffmann. "Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions",
arXiv 2021. https://arxiv.org/abs/2112.05561
Reference: the GAM_Attention class the YOLO community uses (no official code was released), e.g.
https://github.com/z1069614715/objectdetection_script/blob/HEAD/cv-attention/GAM.py (rate=4, biased layers).

Deviations from the reference:
- The channel MLP (two nn.Linear layers applied per pixel on a channels-last permutation) is evaluated as 1x1
  convolutions with the same Linear weights, avoiding two full-tensor permutes; parameters and state dict are equal.
- Widely copied variants omit the sigmoid on the channel map (x * MLP(x)); the paper (Eq. 2) and this reference
  apply it, as does this module.
- BatchNorm in the spatial branch falls back to running statistics when a channel has a single value in training
  (batch 1 with a 1x1 map), where nn.BatchNorm2d raises.
- The bottleneck width is max(c1 // rate, 1) (the reference int(c1 / rate) is 0 for c1 < rate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("GAM_Attention", "GAMAttention", "GlobalAttentionMechanism", "GAM_Block", "GAMBlock"),
    category="channel+spatial",
    paper="Global Attention Mechanism: Retain Information to Enhance Channel-Spatial Interactions",
    venue="arXiv",
    year=2021,
    link="https://arxiv.org/abs/2112.05561",
    reference="https://github.com/z1069614715/objectdetection_script/blob/HEAD/cv-attention/GAM.py",
    deviations=(
        "The per-pixel channel MLP runs as 1x1 convolutions on the Linear weights (no permutes); same parameters.",
        "The channel map goes through a sigmoid (paper Eq. 2); several copies of GAM_Attention omit it.",
        "Spatial-branch BatchNorm uses running statistics when a channel has one value in training (batch 1, 1x1 "
        "map) instead of raising.",
        "Bottleneck width max(c1 // rate, 1), so c1 < rate still builds.",
    ),
    arg_help={"rate": "reduction ratio of the channel MLP and of the 7x7 spatial bottleneck (c1 -> c1/rate -> c1)"},
    ranges={"rate": {"min": 1, "below_c1": True}},
)
class GAM(AttentionModule):
    """Sequential channel then spatial attention without pooling: a per-pixel channel MLP, then two 7x7 convolutions."""

    def __init__(self, c1: int, rate: int = 4) -> None:
        super().__init__()
        hidden = max(c1 // rate, 1)
        self.channel_attention = nn.Sequential(nn.Linear(c1, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, c1))
        self.spatial_attention = nn.Sequential(
            nn.Conv2d(c1, hidden, kernel_size=7, padding=3),
            SafeBatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c1, kernel_size=7, padding=3),
            SafeBatchNorm2d(c1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fc1, _, fc2 = self.channel_attention
        # Linear over the channel axis of every pixel == 1x1 convolution with the same weight.
        a = F.relu(F.conv2d(x, fc1.weight[:, :, None, None], fc1.bias))
        a = F.conv2d(a, fc2.weight[:, :, None, None], fc2.bias)
        x = x * a.sigmoid()
        return x * self.spatial_attention(x).sigmoid()
