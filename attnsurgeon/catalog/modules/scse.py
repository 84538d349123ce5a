"""Concurrent spatial and channel squeeze & excitation (scSE).

Roy, Navab, Wachinger. "Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks",
MICCAI 2018. https://arxiv.org/abs/1803.02579
Reference: https://github.com/ai-med/squeeze_and_excitation (``squeeze_and_excitation.py``, ``ChannelSpatialSELayer``
built from ``ChannelSELayer`` and ``SpatialSELayer``), by the paper's authors.

Two gates run on the same input: cSE (global average pool, c -> c/r -> c fully connected layers with biases, sigmoid;
reduction r = 2 in the reference) recalibrates channels, and sSE (a 1x1 convolution c -> 1 with bias, sigmoid)
recalibrates pixels. The reference combines the two recalibrated tensors with an element-wise maximum ("max-out",
the best aggregation in the authors' follow-up, IEEE TMI 2019); the MICCAI paper itself adds them. Max-out is the
default, addition is available as ``combine="add"``.

Deviations: the bottleneck width is max(c1 // reduction, 1) so tiny channel counts still build; the channel
excitation uses 1x1 convolutions on the pooled N x C x 1 x 1 tensor instead of ``nn.Linear`` (same weights and
parameter count, no reshapes).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("ChannelSpatialSELayer", "scSEBlock", "csSE", "SCSEModule"),
    category="channel+spatial",
    paper="Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional Networks",
    venue="MICCAI",
    year=2018,
    link="https://arxiv.org/abs/1803.02579",
    reference="https://github.com/ai-med/squeeze_and_excitation",
    deviations=(
        "The channel-excitation layers are 1x1 convolutions on the pooled tensor instead of nn.Linear (same weights, "
        "same parameter count).",
        "The bottleneck width is max(c1 // reduction, 1), so channel counts below the reduction ratio still build.",
        "combine='max' (default) is the reference's max-out; the MICCAI paper's element-wise addition is "
        "combine='add'.",
    ),
    arg_help={
        "reduction": "channel reduction ratio r of the cSE bottleneck (c1 -> c1/r -> c1); the reference uses 2",
        "combine": "how the channel- and spatially-recalibrated maps are merged: element-wise max or sum",
    },
    choices={"combine": ("max", "add")},
    ranges={"reduction": {"min": 1, "below_c1": True}},
)
class scSE(AttentionModule):
    """Parallel channel SE and spatial SE gates on the same input, merged by element-wise max (or sum)."""

    def __init__(self, c1: int, reduction: int = 2, combine: str = "max") -> None:
        super().__init__()
        if combine not in ("max", "add"):
            raise ValueError(f"combine must be 'max' or 'add', got {combine!r}")
        hidden = max(c1 // reduction, 1)
        self.combine = combine
        self.fc1 = nn.Conv2d(c1, hidden, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, c1, 1, bias=True)
        self.spatial = nn.Conv2d(c1, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = x * self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))).sigmoid()
        spatial = x * self.spatial(x).sigmoid()
        return torch.maximum(channel, spatial) if self.combine == "max" else channel + spatial
