"""Effective Squeeze-Excitation (eSE).

Lee, Park. "CenterMask: Real-Time Anchor-Free Instance Segmentation", CVPR 2020. https://arxiv.org/abs/1911.06667
Reference: https://github.com/youngwanLEE/CenterMask (``maskrcnn_benchmark/modeling/backbone/vovnet.py``, ``eSEModule``)
and the port the YOLO community copies, timm's ``EffectiveSEModule`` (``timm/layers/squeeze_excite.py``).

eSE keeps SE's global average pooling but replaces the two-layer bottleneck by a single full-width 1x1 convolution
(with bias), so no channel information is lost to the reduction, and gates with a hard sigmoid relu6(x + 3) / 6.

Deviations: none in the default configuration. ``add_maxpool`` is timm's experimental option (mean of average and max
pooling); CenterMask has only average pooling, which is the default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("EffectiveSE", "EffectiveSEModule", "eSEModule"),
    category="channel",
    paper="CenterMask: Real-Time Anchor-Free Instance Segmentation",
    venue="CVPR",
    year=2020,
    link="https://arxiv.org/abs/1911.06667",
    reference="https://github.com/youngwanLEE/CenterMask",
    deviations=(
        "add_maxpool (off by default) is timm's experimental variant, not part of CenterMask: the descriptor is the "
        "mean of average and max pooling.",
    ),
    arg_help={"add_maxpool": "average the global average- and max-pooled descriptors (timm's variant)"},
)
class ESE(AttentionModule):
    """Channel attention from a single full-width 1x1 convolution on the pooled descriptor and a hard-sigmoid gate."""

    def __init__(self, c1: int, add_maxpool: bool = False) -> None:
        super().__init__()
        self.add_maxpool = add_maxpool
        self.fc = nn.Conv2d(c1, c1, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        if self.add_maxpool:
            s = 0.5 * s + 0.5 * x.amax((2, 3), keepdim=True)
        return x * F.hardsigmoid(self.fc(s))
