"""Efficient Local Attention (ELA).

Xu, Wan. "ELA: Efficient Local Attention for Deep Convolutional Neural Networks", arXiv 2024.
https://arxiv.org/abs/2403.01123  The paper has no official code release; the reference is the paper's module
description (Sec. 3) and its four configurations, in the form the YOLO community copies (``ELA(in_channels, phi)``,
https://github.com/AIFengheshu/Plug-play-modules, which cites the paper):

====  ===========  ============================  ===============
phi   1-D kernel   1-D conv groups               GroupNorm groups
====  ===========  ============================  ===============
T     5            C (depthwise)                 32
B     7            C (depthwise)                 16
S     5            C / 8 (8 channels per group)  16
L     7            C / 8 (8 channels per group)  16
====  ===========  ============================  ===============

The default is ELA-B (kernel 7, depthwise, GroupNorm 16), the paper's light configuration that the widely used
``ELA(channel, kernel_size=7)`` port hard-codes. ELA strip-pools the input along W and along H, encodes both 1-D
descriptors with the same 1-D convolution + GroupNorm + sigmoid (no channel reduction, unlike Coordinate Attention),
and multiplies the input by the two positional maps.

Deviations:
- GroupNorm groups fall back to the largest divisor of C not above the configured count when that count does not
  divide C (the reference fails); likewise the S/L conv groups (C // 8) fall back to a divisor of C.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module

# phi -> (kernel size, channels per conv group, GroupNorm groups)
_ELA_CONFIGS: dict[str, tuple[int, int, int]] = {"T": (5, 1, 32), "B": (7, 1, 16), "S": (5, 8, 16), "L": (7, 8, 16)}


@register_module(
    aliases=("EfficientLocalAttention", "ELAttention", "EfficientLocalizationAttention"),
    category="spatial",
    paper="ELA: Efficient Local Attention for Deep Convolutional Neural Networks",
    venue="arXiv",
    year=2024,
    link="https://arxiv.org/abs/2403.01123",
    reference="https://arxiv.org/abs/2403.01123",
    deviations=(
        "No official code exists; built from the paper's description and its T/B/S/L table as the YOLO ports use it.",
        "GroupNorm groups (and the S/L conv groups, C // 8) fall back to the largest divisor of C not above the "
        "configured value when it does not divide C; the ports fail there.",
    ),
    constraints=(
        "GroupNorm groups must divide C; falls back to the largest divisor of C not above 32 (T) or 16 (B/S/L)",
        "On a 1x1 map a GroupNorm group holding one channel normalises to its bias (no spatial extent to normalise)",
    ),
    arg_help={"phi": "paper configuration: T (k5, GN32), B (k7, GN16), S (k5, grouped, GN16), L (k7, grouped, GN16)"},
    choices={"phi": ("T", "B", "S", "L")},
)
class ELA(AttentionModule):
    """Positional attention from strip-pooled rows and columns through a shared 1-D conv, GroupNorm and sigmoid."""

    def __init__(self, c1: int, phi: str = "B") -> None:
        super().__init__()
        if phi not in _ELA_CONFIGS:
            raise ValueError(f"ELA phi must be one of {sorted(_ELA_CONFIGS)}, got {phi!r}")
        k, per_group, gn_groups = _ELA_CONFIGS[phi]
        conv_groups = largest_divisor_at_most(c1, max(c1 // per_group, 1))
        self.conv = nn.Conv1d(c1, c1, k, padding=k // 2, groups=conv_groups, bias=False)
        self.gn = nn.GroupNorm(largest_divisor_at_most(c1, gn_groups), c1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Rows and columns go through the shared conv and GroupNorm separately, as in the reference (one call over
        # their concatenation would mix their GroupNorm statistics).
        a_h = self.gn(self.conv(x.mean(3))).sigmoid()  # N x C x H
        a_w = self.gn(self.conv(x.mean(2))).sigmoid()  # N x C x W
        return x * a_h.unsqueeze(3) * a_w.unsqueeze(2)
