"""Channel Prior Convolutional Attention (CPCA).

Huang, Chen, Zhou, Wang, Chen, Zhang. "Channel prior convolutional attention for medical image segmentation",
Computers in Biology and Medicine, 2024. https://arxiv.org/abs/2306.05196
Reference: https://github.com/Cuthbert-Huang/CPCANet (``CPCANet/nnunet/network_architecture/CPCANet.py``, class
``RepBlock`` with ``ChannelAttention``); the YOLO ports' ``CPCA`` is the same block.

Structure (as in the reference): a 1x1 convolution + GELU; channel attention (a shared bias-ful MLP on the average- and
max-pooled descriptors, each branch through its own sigmoid, the two gates summed) multiplies the features, giving the
"channel prior"; a multi-scale depthwise module (5x5, then three strip-convolution pairs 1x7/7x1, 1x11/11x1,
1x21/21x1, summed with the 5x5 output) gives the spatial attention map after a 1x1 channel-mixing convolution; the
output is that map times the channel prior, passed through the 1x1 convolution once more.

Deviations: none in behaviour. Kept on purpose from the reference, so parameter counts and checkpoints agree: the
single 1x1 convolution ``conv`` is applied three times (input projection, channel mixing of the spatial map, output
projection) with shared weights, and the channel gate is sigmoid(avg) + sigmoid(max) (range 0..2), not the CBAM-style
sigmoid(avg + max). The MLP width is max(C // reduce, 1) so channel counts below the ratio still build.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


def _dw(c: int, kh: int, kw: int) -> nn.Conv2d:
    return nn.Conv2d(c, c, (kh, kw), padding=(kh // 2, kw // 2), groups=c)


@register_module(
    aliases=("CPCABlock", "CPCAttention", "ChannelPriorConvolutionalAttention", "CPCA_Block"),
    category="channel+spatial",
    paper="Channel prior convolutional attention for medical image segmentation",
    venue="Computers in Biology and Medicine",
    year=2024,
    link="https://arxiv.org/abs/2306.05196",
    reference="https://github.com/Cuthbert-Huang/CPCANet",
    deviations=(
        "None in behaviour. Kept from the reference: one 1x1 convolution is shared by the input projection, the "
        "spatial channel mixing and the output projection; the channel gate is sigmoid(MLP(avg)) + sigmoid(MLP(max)).",
        "MLP width is max(C // channel_attention_reduce, 1) so small channel counts still build.",
    ),
    arg_help={"channel_attention_reduce": "reduction ratio of the channel-attention MLP (C -> C/r -> C)"},
    ranges={"channel_attention_reduce": {"min": 1, "below_c1": True}},
)
class CPCA(AttentionModule):
    """Channel attention as a prior, then multi-scale depthwise strip convolutions as spatial attention."""

    def __init__(self, c1: int, channel_attention_reduce: int = 4) -> None:
        super().__init__()
        hidden = max(c1 // channel_attention_reduce, 1)
        self.fc1 = nn.Conv2d(c1, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c1, 1)
        self.dconv5_5 = _dw(c1, 5, 5)
        self.dconv1_7, self.dconv7_1 = _dw(c1, 1, 7), _dw(c1, 7, 1)
        self.dconv1_11, self.dconv11_1 = _dw(c1, 1, 11), _dw(c1, 11, 1)
        self.dconv1_21, self.dconv21_1 = _dw(c1, 1, 21), _dw(c1, 21, 1)
        self.conv = nn.Conv2d(c1, c1, 1)

    def _mlp(self, s: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(s))).sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.conv(x))
        # Both descriptors through the shared MLP in one batch-stacked call.
        pooled = torch.cat((x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)), 0)
        gate_avg, gate_max = self._mlp(pooled).chunk(2, 0)
        prior = x * (gate_avg + gate_max)
        base = self.dconv5_5(prior)
        spatial = (
            base
            + self.dconv7_1(self.dconv1_7(base))
            + self.dconv11_1(self.dconv1_11(base))
            + self.dconv21_1(self.dconv1_21(base))
        )
        return self.conv(self.conv(spatial) * prior)
