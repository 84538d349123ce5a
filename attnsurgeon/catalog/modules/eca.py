"""Efficient Channel Attention.

Wang, Wu, Zhu, Li, Zuo, Hu. "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020. https://arxiv.org/abs/1910.03151  Reference: https://github.com/BangguWu/ECANet
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """The paper's adaptive kernel size: the odd number nearest |log2(C)/gamma + b/gamma|, rounded up to odd."""
    k = int(abs((math.log2(channels) + b) / gamma))
    return k if k % 2 else k + 1


@register_module(
    aliases=("ECAAttention", "ECABlock", "ECANet", "eca_layer", "ECALayer", "EfficientChannelAttention", "ECA_Module"),
    category="channel",
    paper="ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
    venue="CVPR",
    year=2020,
    link="https://arxiv.org/abs/1910.03151",
    reference="https://github.com/BangguWu/ECANet",
    deviations=(
        "The kernel size adapts to the channel count (paper Eq. 12, as in eca_block of the widely copied "
        "nets/attention.py, github.com/bubbliiiing/yolov4-tiny-pytorch); the reference "
        "repository's eca_layer takes a fixed k_size=3 instead. Pass k_size to fix it.",
    ),
    arg_help={
        "b": "offset b of the adaptive kernel-size rule k = |(log2 C + b) / gamma|_odd",
        "gamma": "divisor gamma of the adaptive kernel-size rule",
        "k_size": "fixed odd 1-D kernel size; 0 means adaptive",
    },
    ranges={"b": {"min": 0}, "gamma": {"min": 1}, "k_size": {"min": 0, "odd": True}},
    fork_args=("k_size",),
)
class ECA(AttentionModule):
    """Channel attention by a 1-D convolution across the pooled channel descriptor: local cross-channel interaction."""

    def __init__(self, c1: int, b: int = 1, gamma: int = 2, k_size: int = 0) -> None:
        super().__init__()
        k = k_size if k_size > 0 else eca_kernel_size(c1, gamma, b)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(x).flatten(1).unsqueeze(1)  # N x 1 x C
        y = self.conv(y).sigmoid()
        return x * y.squeeze(1)[:, :, None, None]
