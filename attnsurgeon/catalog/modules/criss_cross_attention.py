"""Criss-Cross Attention.

Huang, Wang, Huang, Huang, Wei, Liu. "CCNet: Criss-Cross Attention for Semantic Segmentation", ICCV 2019.
https://arxiv.org/abs/1811.11721  Reference: https://github.com/speedinghzl/CCNet (the pure-PyTorch
``CrissCrossAttention`` of the pytorch-1.x branch, cc.py; master uses a CUDA extension with the same math).

Each pixel attends to the pixels in its own row and column (H + W - 1 positions; the pixel itself is counted once by
masking it out of the column term), softmax over the joint criss-cross set, and the result is added back scaled by a
learnable gamma.

Deviations from the reference:
- Vectorised einsum form instead of the reference's permute/bmm pairs (same math, no CUDA extension).
- gamma starts at ``gamma_init`` (default 0.01) instead of 0: with gamma = 0 the query, key and value convolutions get
  an exactly zero gradient at initialisation (the module is the identity). Pass gamma_init=0.0 for the reference.
- ``recurrence`` repeats the module with shared weights, as the paper's RCCA head does (R = 2 there); default 1 is the
  reference CrissCrossAttention module.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("CCAttention", "CCA", "CCNet", "RCCA"),
    category="self-attention",
    paper="CCNet: Criss-Cross Attention for Semantic Segmentation",
    venue="ICCV",
    year=2019,
    link="https://arxiv.org/abs/1811.11721",
    reference="https://github.com/speedinghzl/CCNet",
    deviations=(
        "Vectorised einsum implementation in pure PyTorch (the reference master branch uses a CUDA extension).",
        "gamma is initialised to gamma_init = 0.01 instead of 0, so every parameter gets a gradient from the first "
        "step; gamma_init=0.0 restores the reference (identity at init, zero gradients for the convolutions).",
        "Optional recurrence R (shared weights), as in the paper's RCCA head; the default 1 is the reference module.",
    ),
    constraints=(
        "Query/key width is max(c1 // 8, 1).",
        "Memory grows with H*W*(H+W); fine for YOLO's P3-P5 maps.",
    ),
    arg_help={
        "gamma_init": "initial value of the learnable residual scale gamma (reference: 0.0)",
        "recurrence": "how many times the criss-cross attention is applied with shared weights (paper RCCA: 2)",
    },
    ranges={"recurrence": {"min": 1}},
)
class CrissCrossAttention(AttentionModule):
    """Self-attention over each pixel's row and column, added back to the input through a learnable scale."""

    def __init__(self, c1: int, gamma_init: float = 0.01, recurrence: int = 1) -> None:
        super().__init__()
        inner = max(c1 // 8, 1)
        self.recurrence = max(recurrence, 1)
        self.query_conv = nn.Conv2d(c1, inner, kernel_size=1)
        self.key_conv = nn.Conv2d(c1, inner, kernel_size=1)
        self.value_conv = nn.Conv2d(c1, c1, kernel_size=1)
        self.gamma = nn.Parameter(torch.full((1,), float(gamma_init)))

    def _weights(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax weights (N, H, W, H + W): pixel (h, w) on its column's pixels, then on its row's."""
        h = x.shape[-2]
        q, k = self.query_conv(x), self.key_conv(x)
        energy_h = torch.einsum("nchw,nckw->nhwk", q, k)  # pixel (h, w) vs (k, w): its column
        energy_w = torch.einsum("nchw,nchk->nhwk", q, k)  # pixel (h, w) vs (h, k): its row
        # The pixel itself appears in both; drop it from the column term so it is counted once.
        self_mask = torch.eye(int(h), dtype=torch.bool, device=x.device)[:, None, :]  # h, 1, k
        energy_h = energy_h.masked_fill(self_mask, float("-inf"))
        return torch.cat([energy_h, energy_w], dim=-1).softmax(dim=-1)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-2]
        attn, v = self._weights(x), self.value_conv(x)
        attn_h, attn_w = attn[..., : int(h)], attn[..., int(h) :]
        out = torch.einsum("nhwk,nckw->nchw", attn_h, v) + torch.einsum("nhwk,nchk->nchw", attn_w, v)
        return self.gamma * out + x

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The attention each position of the input ``x`` receives in the first pass (N x H x W): the sum of the
        weights every query of its row and column puts on it."""
        h = x.shape[-2]
        attn = self._weights(x)
        from_column = attn[..., :h].sum(1).transpose(1, 2)  # N w k -> N k w: key (k, w), summed over query rows
        from_row = attn[..., h:].sum(2)  # N h k: key (h, k), summed over query columns
        return from_column + from_row

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):  # shared weights, as in RCCA
            x = self._attend(x)
        return x
