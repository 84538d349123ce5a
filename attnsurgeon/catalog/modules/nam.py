"""NAM: Normalization-based Attention Module (channel variant).

Liu, Shao, Wang, Zhang, Hoffmann. "NAM: Normalization-based Attention Module", NeurIPS 2021 Workshop on ImageNet:
Past, Present, and Future. https://arxiv.org/abs/2111.12419
Reference: https://github.com/Christian-lyc/NAM (MODELS/attention.py, Channel_Att).

Deviations from the reference:
- The per-channel weights |gamma_i| / sum_j |gamma_j| are computed from the BatchNorm scale detached from the graph,
  like the reference's ``.data`` (gamma still learns through the BatchNorm output itself); ``.detach()`` replaces
  ``.data`` so tracing and export see an ordinary op.
- The scaling is a broadcast over a C x 1 x 1 view instead of two full-tensor permutes (same values).
- BatchNorm uses running statistics when a channel has a single value in training (batch 1, 1x1 map), where
  nn.BatchNorm2d raises.
- The paper's L1 sparsity penalty on gamma belongs to the training loss, not to the module; it is not applied.
"""

from __future__ import annotations

import torch

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("NAMAttention", "NAMChannel", "Channel_Att", "NAMChannelAttention", "NAMAttentionBlock"),
    category="channel",
    paper="NAM: Normalization-based Attention Module",
    venue="NeurIPS Workshop",
    year=2021,
    link="https://arxiv.org/abs/2111.12419",
    reference="https://github.com/Christian-lyc/NAM",
    deviations=(
        "Channel weights |gamma| / sum|gamma| use the detached BatchNorm scale, as the reference's .data does "
        "(detach() instead of .data so export traces it); gamma and beta learn through the BatchNorm output.",
        "Broadcast over C x 1 x 1 instead of two full-tensor permutes.",
        "BatchNorm uses running statistics when a channel has one value in training (batch 1, 1x1 map) instead of "
        "raising.",
        "The paper's L1 penalty on gamma is a loss term and is not part of the module.",
    ),
    arg_help={},
)
class NAM(AttentionModule):
    """Channel attention from BatchNorm: normalised features weighted by each channel's share of |gamma|, gated."""

    def __init__(self, c1: int) -> None:
        super().__init__()
        self.bn2 = SafeBatchNorm2d(c1, affine=True)  # reference attribute name, so checkpoints load

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = self.bn2.weight.detach().abs()
        weight_bn = (gamma / gamma.sum()).to(x.dtype)
        return x * torch.sigmoid(self.bn2(x) * weight_bn[:, None, None])
