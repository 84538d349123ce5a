"""Cascaded Group Attention of EfficientViT (in its LocalWindowAttention wrapper).

Liu, Peng, Zheng, Yang, Hu, Yuan. "EfficientViT: Memory Efficient Vision Transformer with Cascaded Group Attention",
CVPR 2023. https://arxiv.org/abs/2305.07027
Reference: https://github.com/microsoft/Cream/tree/main/EfficientViT (classification/model/efficientvit.py,
CascadedGroupAttention and LocalWindowAttention).

Each head sees its own channel split plus the previous head's output (the cascade), computes q/k/v with a 1x1
Conv-BN, refines q with a depthwise Conv-BN, and adds a learned bias indexed by the (|dy|, |dx|) offset between
tokens. The concatenated head outputs go through ReLU and a 1x1 Conv-BN.

Deviations from the reference:
- Always windowed, as LocalWindowAttention does with window_resolution 7: the bias table is for a 7 x 7 window, so it
  fits any map. The window is min(window_resolution, H) x min(window_resolution, W) (the reference shrinks its table
  the same way for small inputs: min(window_resolution, resolution)); larger maps are padded bottom/right and cropped
  back. The reference's assertion that the input has the training resolution is dropped.
- Padded key positions are masked out of the softmax (the reference lets the zero padding act as keys).
- The output Conv-BN's BatchNorm weight starts at 1, not 0: the reference zero-init relies on the Residual wrapper of
  EfficientViTBlock; standalone, a zero output would give every other parameter a zero gradient.
- num_heads falls back to the largest divisor of c1 not above it; kernels are reused cyclically when there are more
  heads than kernels.
- attn_ratio: the class default 4 only builds when attn_ratio * key_dim == c1 / num_heads (c1 = 256 with the other
  defaults), because the cascade adds each head's output to the next head's input split; EfficientViT's model builder
  therefore sets attn_ratio = dim / (key_dim * num_heads). Here 0 (default) applies that rule, and a ratio that cannot
  build the cascade is replaced by it.
- BatchNorm layers use running statistics for a training call with a single value per channel (batch 1, 1x1 map).
- The inference-time cache of the bias table (``self.ab``) is not kept: the biases are gathered every call.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d, largest_divisor_at_most, pad_to_multiple
from attnsurgeon.catalog.registry import register_module


class _ConvBN(nn.Sequential):
    """Bias-free convolution followed by BatchNorm (the reference's Conv2d_BN)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, groups: int = 1, bn_weight_init: float = 1.0) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(c_in, c_out, k, 1, k // 2, groups=groups, bias=False))
        self.add_module("bn", SafeBatchNorm2d(c_out))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)


@register_module(
    aliases=("CGA", "EfficientViTAttention", "LocalWindowAttention"),
    category="self-attention",
    paper="EfficientViT: Memory Efficient Vision Transformer with Cascaded Group Attention",
    venue="CVPR",
    year=2023,
    link="https://arxiv.org/abs/2305.07027",
    reference="https://github.com/microsoft/Cream/tree/main/EfficientViT",
    deviations=(
        "Always windowed (window_resolution 7, as LocalWindowAttention) so the attention-bias table fits any map; "
        "small maps use a min(window, H) x min(window, W) window, large maps are padded and cropped.",
        "Padded positions are masked out as keys (the reference lets zero padding take part in the softmax).",
        "The output BatchNorm weight is initialised to 1, not 0 (the zero init assumes the EfficientViTBlock "
        "residual; standalone it zeroes the output and every other gradient).",
        "num_heads falls back to the largest divisor of c1; kernels are reused cyclically for extra heads.",
        "attn_ratio defaults to 0 = EfficientViT's builder rule c1 / (key_dim * heads) (= the class default 4 at "
        "c1=256); the cascade needs value width == c1 / heads, so a ratio that breaks it is replaced by the rule "
        "(the reference crashes for it).",
        "BatchNorm falls back to running statistics for a training call with one value per channel (batch 1, 1x1).",
        "No cached bias table for inference; biases are gathered on every call.",
    ),
    constraints=(
        "num_heads must divide c1; falls back to the largest divisor of c1 not above num_heads.",
        "Maps larger than window_resolution are attended in padded windows of that size.",
        "Value width per head is c1 / num_heads (the cascade adds each head's output to the next head's input).",
    ),
    arg_help={
        "key_dim": "query/key channels per head",
        "num_heads": "number of heads (channel groups in the cascade)",
        "attn_ratio": "value channels per head = attn_ratio * key_dim; 0 = c1 / (key_dim * heads), EfficientViT's rule "
        "(4 at c1=256 with the defaults)",
        "window_resolution": "side of the local attention window (and of the bias table)",
        "kernels": "depthwise kernel size on the query of each head",
    },
    ranges={
        "key_dim": {"min": 1, "width": True},
        "num_heads": {"min": 1, "below_c1": True},
        "attn_ratio": {"min": 0},
        "window_resolution": {"min": 1},
        "kernels": {"min": 1, "odd": True},
    },
)
class CascadedGroupAttention(AttentionModule):
    """Window attention whose heads take disjoint channel splits in a cascade, with relative-offset biases."""

    def __init__(
        self,
        c1: int,
        key_dim: int = 16,
        num_heads: int = 4,
        attn_ratio: float = 0.0,
        window_resolution: int = 7,
        kernels: tuple[int, ...] = (5, 5, 5, 5),
    ) -> None:
        super().__init__()
        heads = largest_divisor_at_most(c1, num_heads)
        kernels = tuple(kernels) or (5,)
        self.num_heads = heads
        self.key_dim = key_dim
        # The cascade adds head i's output (d channels) to head i+1's input split (c1 / heads channels), so they
        # must match; EfficientViT's builder guarantees it with attn_ratio = dim / (key_dim * heads).
        # So d = c1 // heads always: it equals attn_ratio * key_dim whenever that ratio can build the cascade.
        self.attn_ratio = attn_ratio if attn_ratio > 0 and int(attn_ratio * key_dim) == c1 // heads else 0.0
        self.d = c1 // heads
        self.scale = key_dim**-0.5
        self.window = max(window_resolution, 1)
        self.qkvs = nn.ModuleList(_ConvBN(c1 // heads, 2 * key_dim + self.d) for _ in range(heads))
        self.dws = nn.ModuleList(
            _ConvBN(key_dim, key_dim, kernels[h % len(kernels)], groups=key_dim) for h in range(heads)
        )
        self.proj = nn.Sequential(nn.ReLU(), _ConvBN(self.d * heads, c1, bn_weight_init=1.0))
        # One bias per head and per (|dy|, |dx|) offset inside a window x window window.
        points = list(itertools.product(range(self.window), range(self.window)))
        offsets: dict[tuple[int, int], int] = {}
        idxs = []
        for p1 in points:
            for p2 in points:
                idxs.append(offsets.setdefault((abs(p1[0] - p2[0]), abs(p1[1] - p2[1])), len(offsets)))
        self.attention_biases = nn.Parameter(torch.zeros(heads, len(offsets)))
        self.register_buffer(
            "attention_bias_idxs", torch.tensor(idxs, dtype=torch.long).view(len(points), len(points)), persistent=False
        )

    def _biases(self, wh: int, ww: int) -> torch.Tensor:
        """heads x T x T biases for a wh x ww window (a sub-table of the full window's: biases depend on offsets)."""
        keep = (torch.arange(wh)[:, None] * self.window + torch.arange(ww)[None, :]).flatten()
        keep = keep.to(self.attention_bias_idxs.device)
        idxs = self.attention_bias_idxs.index_select(0, keep).index_select(1, keep)
        return self.attention_biases[:, idxs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        h, w = int(h), int(w)
        wh, ww = min(self.window, h), min(self.window, w)
        xp, pad_b, pad_r = pad_to_multiple(x, wh, ww)
        nh, nw = (h + pad_b) // wh, (w + pad_r) // ww
        # Window partition: B C (nh wh) (nw ww) -> (B nh nw) C wh ww
        xw = xp.reshape(b, c, nh, wh, nw, ww).permute(0, 2, 4, 1, 3, 5).reshape(b * nh * nw, c, wh, ww)
        bias = self._biases(wh, ww).to(x.dtype)  # heads, T, T
        if pad_b or pad_r:
            valid = pad_to_multiple(torch.ones(1, 1, h, w, device=x.device), wh, ww)[0]
            valid = valid.reshape(1, nh, wh, nw, ww).permute(1, 3, 0, 2, 4).reshape(nh * nw, 1, wh * ww) > 0
            key_mask = (~valid).repeat(b, 1, 1)  # (B nh nw), 1, T
        else:
            key_mask = None
        feats_in = xw.chunk(self.num_heads, dim=1)
        feats_out = []
        feat = feats_in[0]
        for i, (qkv, dw) in enumerate(zip(self.qkvs, self.dws, strict=True)):  # the cascade is sequential by design
            if i > 0:
                feat = feat + feats_in[i]
            q, k, v = qkv(feat).split([self.key_dim, self.key_dim, self.d], dim=1)
            q = dw(q)
            q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)  # Bw, C', T
            attn = (q.transpose(-2, -1) @ k) * self.scale + bias[i]
            if key_mask is not None:
                attn = attn.masked_fill(key_mask, float("-inf"))
            attn = attn.softmax(dim=-1)
            feat = (v @ attn.transpose(-2, -1)).reshape(-1, self.d, wh, ww)
            feats_out.append(feat)
        out = self.proj(torch.cat(feats_out, dim=1))
        # Window reverse and crop.
        out = out.reshape(b, nh, nw, c, wh, ww).permute(0, 3, 1, 4, 2, 5).reshape(b, c, nh * wh, nw * ww)
        return out[:, :, :h, :w]
