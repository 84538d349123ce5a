"""Squeeze-and-Excitation.

Hu, Shen, Sun. "Squeeze-and-Excitation Networks", CVPR 2018. https://arxiv.org/abs/1709.01507
Reference: https://github.com/hujie-frank/SENet (Caffe); the PyTorch form the YOLO community copies (``se_block`` of
the widely copied ``nets/attention.py``, https://github.com/bubbliiiing/yolov4-tiny-pytorch) uses bias-free fully
connected layers, which this module follows so the parameter counts agree.
"""

from __future__ import annotations

import torch

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import excitation
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("SEAttention", "SEBlock", "SENet", "SE_Block", "SELayer", "SEModule"),
    category="channel",
    paper="Squeeze-and-Excitation Networks",
    venue="CVPR",
    year=2018,
    link="https://arxiv.org/abs/1709.01507",
    reference="https://github.com/hujie-frank/SENet",
    deviations=(
        "Fully connected layers are bias-free, as in the widely copied PyTorch port (se_block of nets/attention.py, "
        "github.com/bubbliiiing/yolov4-tiny-pytorch); the Caffe original has biases.",
        "The bottleneck width is max(c1 // reduction, 1), so channel counts below the reduction ratio still build.",
    ),
    arg_help={"reduction": "channel reduction ratio r of the excitation bottleneck (c1 -> c1/r -> c1)"},
    ranges={"reduction": {"min": 1, "below_c1": True}},
)
class SE(AttentionModule):
    """Channel attention from globally pooled features through a two-layer bottleneck and a sigmoid gate."""

    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = excitation(c1, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        weights = self.fc(x.mean((2, 3)))  # squeeze: global average pooling (a plain mean is the fastest form)
        return x * weights.view(n, c, 1, 1)
