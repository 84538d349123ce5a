"""Mixed Local Channel Attention.

Wan, Zhang, Zhou, Xue, Zhu, Ma, Yang, Kong. "Mixed local channel attention for object detection", Engineering
Applications of Artificial Intelligence 123 (2023) 106442. https://doi.org/10.1016/j.engappai.2023.106442
Reference: https://github.com/wandahangFY/MLCA (MLCA.py).

Deviations from the reference:
- The adaptive average pooling (to local_size x local_size, and the "un-pooling" back to H x W) is computed as two
  small averaging-matrix products
  (attnsurgeon.catalog.modules.building_blocks.adaptive_avg_pool2d_exportable): identical values to
  nn.AdaptiveAvgPool2d, but it exports to ONNX for any map size (the exporter rejects non-divisible adaptive pools).
- The debugging print() calls of the reference forward are dropped.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import adaptive_avg_pool2d_exportable
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("MixedLocalChannelAttention", "MLCAttention", "MLCA_Block"),
    category="channel+spatial",
    paper="Mixed local channel attention for object detection",
    venue="Engineering Applications of Artificial Intelligence",
    year=2023,
    link="https://doi.org/10.1016/j.engappai.2023.106442",
    reference="https://github.com/wandahangFY/MLCA",
    deviations=(
        "Adaptive average pooling (to local_size x local_size and back to H x W) is computed with averaging matrices: "
        "the same values as nn.AdaptiveAvgPool2d, but exportable to ONNX for sizes that are not multiples.",
        "The reference's debugging print() calls are removed.",
    ),
    constraints=(
        "Any H x W works; maps smaller than local_size are replicated up by the adaptive pooling, as in the reference.",
    ),
    arg_help={
        "local_size": "side of the local pooling grid (local_size x local_size cells)",
        "gamma": "divisor gamma of the ECA kernel-size rule k = |(log2 C + b) / gamma|_odd",
        "b": "offset b of the ECA kernel-size rule",
        "local_weight": "weight of the local attention map; the global map gets 1 - local_weight",
    },
    ranges={"local_size": {"min": 1}, "gamma": {"min": 1}, "b": {"min": 0}, "local_weight": {"min": 0, "max": 1}},
)
class MLCA(AttentionModule):
    """Channel attention from ECA-style 1-D convolutions over local (k x k grid) and global pooled descriptors."""

    def __init__(self, c1: int, local_size: int = 5, gamma: int = 2, b: int = 1, local_weight: float = 0.5) -> None:
        super().__init__()
        self.local_size = local_size
        self.local_weight = local_weight
        t = int(abs(math.log2(c1) + b) / gamma)
        k = t if t % 2 else t + 1
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)  # global branch
        self.conv_local = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.local_size
        local = adaptive_avg_pool2d_exportable(x, s, s)  # N, C, s, s
        glob = local.mean(dim=(2, 3))  # the reference pools the local grid, not x (equal when divisible)
        # The local descriptor is one sequence (position-major, channel-minor), as in the reference.
        seq = local.flatten(2).transpose(1, 2).reshape(n, 1, s * s * c)
        y_local = self.conv_local(seq).reshape(n, s * s, c).transpose(1, 2).reshape(n, c, s, s)
        y_global = self.conv(glob.unsqueeze(1)).reshape(n, c, 1, 1)
        # Un-pooling the global 1x1 map to s x s is a broadcast.
        att = y_global.sigmoid() * (1 - self.local_weight) + y_local.sigmoid() * self.local_weight
        return x * adaptive_avg_pool2d_exportable(att, h, w)
