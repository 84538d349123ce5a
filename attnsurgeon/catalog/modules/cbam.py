"""Convolutional Block Attention Module.

Woo, Park, Lee, Kweon. "CBAM: Convolutional Block Attention Module", ECCV 2018. https://arxiv.org/abs/1807.06521
Reference: https://github.com/Jongchan/attention-module (official). The form the YOLO community copies, ``cbam_block``
of the widely copied ``nets/attention.py`` (https://github.com/bubbliiiing/yolov4-tiny-pytorch), differs from it;
this module follows that layer layout so the parameter counts agree with it, and takes the paper's reduction ratio as
its default.

Deviations from the official reference (listed in the registry entry too):
- the shared channel MLP is two bias-free 1x1 layers (``cbam_block``); the official MLP is two ``nn.Linear`` with
  biases;
- the spatial 7x7 convolution is bias-free with no BatchNorm (``cbam_block``); the official ``BasicConv`` adds a
  BatchNorm;
- the spatial descriptor is [mean, max] (``cbam_block``); the official ``ChannelPool`` stacks [max, mean];
- default reduction is the paper's r=16 (``cbam_block`` uses 8: pass ``[8, 7]`` to reproduce it).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("CBAMBlock", "cbam_block", "CBAMAttention", "CBAMModule"),
    category="channel+spatial",
    paper="CBAM: Convolutional Block Attention Module",
    venue="ECCV",
    year=2018,
    link="https://arxiv.org/abs/1807.06521",
    reference="https://github.com/Jongchan/attention-module",
    deviations=(
        "Channel MLP layers are bias-free, as in the form YOLO projects copy (cbam_block of the widely copied "
        "nets/attention.py, github.com/bubbliiiing/yolov4-tiny-pytorch); the official reference uses nn.Linear with "
        "biases.",
        "The spatial convolution is bias-free without BatchNorm (as in cbam_block); the official BasicConv adds "
        "BatchNorm.",
        "Spatial descriptor order is [mean, max] (as in cbam_block); the official ChannelPool stacks [max, mean].",
        "Default reduction is the paper's 16; cbam_block uses 8 (pass [8, 7] to reproduce its parameter count).",
        "The bottleneck width is max(c1 // reduction, 1), so channel counts below the ratio still build.",
        "The average- and max-pooled descriptors go through the shared MLP as one batch (same result, one pass).",
    ),
    constraints=("kernel_size must be odd (3, 5 or 7) so the spatial map keeps its size",),
    arg_help={
        "reduction": "channel reduction ratio r of the shared MLP (c1 -> c1/r -> c1)",
        "kernel_size": "kernel size of the spatial-attention convolution over the [mean, max] maps",
    },
    choices={"kernel_size": (3, 5, 7)},
    ranges={"reduction": {"min": 1, "below_c1": True}, "kernel_size": {"odd": True}},
    fork_args=("kernel_size",),
)
class CBAM(AttentionModule):
    """Channel attention (shared MLP over avg- and max-pooled features) followed by 7x7 spatial attention."""

    def __init__(self, c1: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        hidden = max(c1 // reduction, 1)
        self.fc1 = nn.Conv2d(c1, hidden, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, c1, 1, bias=False)
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def _gated(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x after the channel gate, the spatial gate's logits N x 1 x H x W)."""
        n = x.shape[0]
        # avg and max descriptors share the MLP: run them as one batch of 2N
        pooled = torch.cat((x.mean((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)), dim=0)
        logits = self.fc2(self.act(self.fc1(pooled)))
        x = x * (logits[:n] + logits[n:]).sigmoid()
        maps = torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), dim=1)
        return x, self.spatial(maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, logits = self._gated(x)
        return x * logits.sigmoid()

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial gate on the input ``x``'s positions, before its sigmoid (N x H x W): the gate's ranking, kept
        apart where float32 rounds the gate itself to one value (logits ~1e-8 on a fresh model)."""
        return self._gated(x)[1][:, 0]
