"""Multi-Scale Dilated Attention (MSDA) of DilateFormer.

Jiao, Zhang, Lei, Zhang, Liu, Chen, Li, Tang, Yang, Zhang, Zhang. "DilateFormer: Multi-Scale Dilated Transformer for
Visual Recognition", IEEE Transactions on Multimedia 2023. https://arxiv.org/abs/2302.01791
Reference: https://github.com/JIAWENJIAN/DilateFormer (dilateformer.py, MultiDilatelocalAttention/DilateAttention).

The heads are split into groups, one per dilation rate; each query attends to the kernel_size x kernel_size keys
around it sampled with that group's dilation (sliding-window dilated attention), then a linear projection mixes the
concatenated groups.

Deviations from the reference:
- Input and output are NCHW (the reference block passes NHWC); the projection is the same Linear over channels.
- Out-of-image key positions are masked out of the softmax. The reference unfolds with zero padding, so border
  queries also attend to zero keys (logit 0) with zero values, diluting their attention.
- The reference asserts num_heads % len(dilation) == 0 and c1 % len(dilation) == 0. Here heads fall back to the
  largest divisor of c1 not above num_heads and are split over the dilations as evenly as possible (8 heads over
  dilations (1, 2, 3): 3, 3, 2 heads); with fewer heads than dilations only the first dilations are used.
  Parameters do not depend on the split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("MultiDilatelocalAttention", "MultiScaleDilatedAttention", "DilateFormer"),
    category="self-attention",
    paper="DilateFormer: Multi-Scale Dilated Transformer for Visual Recognition",
    venue="IEEE TMM",
    year=2023,
    link="https://arxiv.org/abs/2302.01791",
    reference="https://github.com/JIAWENJIAN/DilateFormer",
    deviations=(
        "NCHW in and out (the reference module takes NHWC); same parameters.",
        "Out-of-image key positions are masked out of the softmax (the reference's zero padding takes part in it).",
        "Heads fall back to the largest divisor of c1 <= num_heads and are split over the dilations as evenly as "
        "possible, instead of asserting num_heads % len(dilation) == 0.",
    ),
    constraints=(
        "num_heads must divide c1; falls back to the largest divisor of c1 not above num_heads.",
        "Heads are split over the dilations as evenly as possible; with fewer heads than dilations the last "
        "dilations are dropped.",
    ),
    arg_help={
        "num_heads": "total number of heads, shared out over the dilation rates",
        "kernel_size": "side of the sliding key window of each query",
        "dilation": "dilation rates, one head group each",
        "qkv_bias": "bias in the q/k/v 1x1 convolution",
    },
    ranges={"num_heads": {"min": 1, "below_c1": True}, "kernel_size": {"min": 1, "odd": True}, "dilation": {"min": 1}},
)
class MSDA(AttentionModule):
    """Sliding-window self-attention whose head groups sample their k x k neighbourhood at different dilations."""

    def __init__(
        self,
        c1: int,
        num_heads: int = 8,
        kernel_size: int = 3,
        dilation: tuple[int, ...] = (1, 2, 3),
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        heads = largest_divisor_at_most(c1, num_heads)
        dilations = tuple(dilation)[:heads] or (1,)
        self.head_dim = c1 // heads
        self.scale = self.head_dim**-0.5
        self.kernel_size = kernel_size
        self.dilations = dilations
        base, extra = divmod(heads, len(dilations))
        self.group_heads = tuple(base + (1 if g < extra else 0) for g in range(len(dilations)))
        self.qkv = nn.Conv2d(c1, 3 * c1, 1, bias=qkv_bias)
        self.proj = nn.Linear(c1, c1)

    def _dilated_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dil: int) -> torch.Tensor:
        b, c, h, w = q.shape
        m, d, kk = c // self.head_dim, self.head_dim, self.kernel_size * self.kernel_size
        pad = dil * (self.kernel_size - 1) // 2
        k = F.unfold(k, self.kernel_size, dilation=dil, padding=pad).reshape(b, m, d, kk, h * w)
        v = F.unfold(v, self.kernel_size, dilation=dil, padding=pad).reshape(b, m, d, kk, h * w)
        q = q.reshape(b, m, d, h * w)
        attn = torch.einsum("bmdn,bmdkn->bmnk", q, k) * self.scale
        inside = F.unfold(torch.ones(1, 1, h, w, device=q.device), self.kernel_size, dilation=dil, padding=pad)
        outside = (inside[0] == 0).transpose(0, 1)  # N, kk
        attn = attn.masked_fill(outside, float("-inf")).softmax(dim=-1)
        return torch.einsum("bmnk,bmdkn->bmdn", attn, v).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        q, k, v = self.qkv(x).split(c, dim=1)
        widths = [g * self.head_dim for g in self.group_heads]
        groups = zip(q.split(widths, 1), k.split(widths, 1), v.split(widths, 1), self.dilations, strict=True)
        out = torch.cat([self._dilated_attention(qg, kg, vg, dil) for qg, kg, vg, dil in groups], dim=1)
        return self.proj(out.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
