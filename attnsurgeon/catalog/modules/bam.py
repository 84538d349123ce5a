"""Bottleneck Attention Module (BAM).

Park, Woo, Lee, Kweon. "BAM: Bottleneck Attention Module", BMVC 2018. https://arxiv.org/abs/1807.06514
Reference: https://github.com/Jongchan/attention-module (``MODELS/bam.py``, classes ``ChannelGate``, ``SpatialGate``,
``BAM``), by the paper's authors.

Two parallel branches produce a C x 1 x 1 channel map (global average pool, Linear c -> c/r, BatchNorm, ReLU,
Linear c/r -> c) and a 1 x H x W spatial map (1x1 conv c -> c/r, BN, ReLU, two 3x3 convolutions with dilation 4, each
with BN and ReLU, 1x1 conv c/r -> 1; all convolutions with bias). They are broadcast to C x H x W, combined, and the
output is x * (1 + sigmoid(combined)). Layer layout and parameter count follow the reference.

Deviations from the reference (listed in the registry entry too):
- combine: the paper (Eq. 2, and its ablation, where sum beats product and max) adds the two maps; the reference code
  multiplies them (issues #1, #39, #52 of the reference repository). The default follows the paper ("sum");
  combine="product" reproduces the reference code;
- the reference ChannelGate reads an undefined ``gate_activation`` (NameError on construction): dropped;
- the reference pools with ``avg_pool2d(x, H, stride=H)``, which averages only the first H columns when W > H and
  fails when W < H; this module uses the global mean over H x W;
- BatchNorm: the channel branch's BatchNorm1d on the N x C/r vector raises in training at batch 1; here it is a
  SafeBatchNorm2d on the N x C/r x 1 x 1 tensor (same parameters and statistics; normalises with the running
  statistics when a channel holds a single value), and the spatial BNs are SafeBatchNorm2d too (1x1 maps at batch 1).
  The Linear layers are the equivalent 1x1 convolutions on the pooled tensor (same weights and parameter count);
- the bottleneck width is max(c1 // reduction, 1).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("BAMBlock", "BottleneckAttentionModule", "BAMAttention"),
    category="channel+spatial",
    paper="BAM: Bottleneck Attention Module",
    venue="BMVC",
    year=2018,
    link="https://arxiv.org/abs/1807.06514",
    reference="https://github.com/Jongchan/attention-module",
    deviations=(
        "The channel and spatial maps are added before the sigmoid as in the paper (Eq. 2 and its ablation); the "
        "reference code multiplies them: pass combine='product' to reproduce it.",
        "The reference ChannelGate reads an undefined gate_activation (NameError); dropped.",
        "Channel pooling is the global mean; the reference's avg_pool2d(x, H, stride=H) ignores columns beyond H "
        "and fails when W < H.",
        "BatchNorm1d of the channel branch is a SafeBatchNorm2d on the pooled N x C/r x 1 x 1 tensor, and the spatial "
        "BNs are SafeBatchNorm2d, so batch 1 / 1x1 maps train (running statistics are used where a channel holds one "
        "value); same parameters.",
        "The channel branch's Linear layers are equivalent 1x1 convolutions on the pooled tensor (same parameters).",
        "The bottleneck width is max(c1 // reduction, 1), so channel counts below the reduction ratio still build.",
    ),
    arg_help={
        "reduction": "channel reduction ratio r of both branches (c1 -> c1/r)",
        "dilation": "dilation (and padding) of the two 3x3 convolutions of the spatial branch",
        "combine": "how the channel and spatial maps are merged before the sigmoid: 'sum' (paper) or 'product' "
        "(reference code)",
    },
    choices={"combine": ("sum", "product")},
    ranges={"reduction": {"min": 1, "below_c1": True}, "dilation": {"min": 1}},
)
class BAM(AttentionModule):
    """Parallel channel (pooled MLP) and spatial (dilated convolutions) maps; output x * (1 + sigmoid(map))."""

    def __init__(self, c1: int, reduction: int = 16, dilation: int = 4, combine: str = "sum") -> None:
        super().__init__()
        if combine not in ("sum", "product"):
            raise ValueError(f"combine must be 'sum' or 'product', got {combine!r}")
        hidden = max(c1 // reduction, 1)
        self.combine = combine
        self.channel_gate = nn.Sequential(
            nn.Conv2d(c1, hidden, 1),
            SafeBatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c1, 1),
        )
        self.spatial_gate = nn.Sequential(
            nn.Conv2d(c1, hidden, 1),
            SafeBatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation),
            SafeBatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation),
            SafeBatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel = self.channel_gate(x.mean((2, 3), keepdim=True))  # N x C x 1 x 1
        spatial = self.spatial_gate(x)  # N x 1 x H x W
        att = channel + spatial if self.combine == "sum" else channel * spatial
        return x * (1.0 + att.sigmoid())
