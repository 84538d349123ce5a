"""Deformable Attention (DAT).

Xia, Pan, Song, Li, Huang. "Vision Transformer with Deformable Attention", CVPR 2022. https://arxiv.org/abs/2201.00520
Reference: https://github.com/LeapLabTHU/DAT (``models/dat_blocks.py``, class ``DAttentionBaseline``), in the
configuration the YOLO ports register as ``DAttention`` (8 heads, 4 offset groups, stride 1, offset range factor 4,
3x3 offset kernel, depthwise-convolution positional encoding).

Queries come from every position; an offset network (depthwise conv, LayerNorm, GELU, 1x1 conv to 2 channels) on
each group's queries predicts where to sample keys: a uniform grid of reference points (one per key cell) moved by
offsets bounded to ``offset_range_factor`` x half a key cell by tanh. Keys and values are projected from the features
bilinearly sampled there; multi-head attention of all queries over the sampled keys follows, plus a depthwise 3x3
convolution of the queries as positional encoding, then an output projection.

Deviations (all so that any feature-map size works and exports):
- No ``q_size``/``kv_size`` constructor arguments: sizes come from the input at run time. The positional encoding is
  the reference's ``dwc_pe`` variant (size-independent); the table-based biases (``fixed_pe``, the default relative
  table) are tied to one map size and are not offered.
- Reference points sit at key-cell centres, (i + 0.5) / Hk in normalised coordinates, sampled with
  ``align_corners=False``; the reference divides by Hk - 1 under ``align_corners=True``, which shifts every sample by
  half a pixel (the last row/column reads half padding) and divides by zero for a 1-pixel side. Offsets are bounded
  to ``offset_range_factor / Hk`` (the reference's ``1 / (Hk - 1)``, same range in pixels, no division by zero).
- Bilinear sampling runs in float32 and is cast back (position precision in bfloat16/float16).
- Heads fall back to the largest divisor of C not above ``n_heads``, groups to the largest divisor of the heads not
  above ``n_groups`` (the reference requires divisibility).
- With ``ksize == stride`` (no padding in the reference's offset conv) the offset input is zero-padded to a multiple
  of the stride, so maps smaller than the stride still give one key.
- Attention uses ``scaled_dot_product_attention`` (same math; memory-efficient kernels). Dropout (0 in the reference
  configuration) is omitted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import largest_divisor_at_most, pad_to_multiple
from attnsurgeon.catalog.registry import register_module


class _ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of an NCHW tensor (the reference's LayerNormProxy)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@register_module(
    aliases=("DAT", "DeformableAttention", "DAttentionBaseline"),
    category="self-attention",
    paper="Vision Transformer with Deformable Attention",
    venue="CVPR",
    year=2022,
    link="https://arxiv.org/abs/2201.00520",
    reference="https://github.com/LeapLabTHU/DAT",
    deviations=(
        "Size-agnostic: no q_size/kv_size; the positional encoding is the reference's dwc_pe variant (depthwise 3x3 "
        "conv of the queries); the size-bound bias tables are not offered.",
        "Reference points at key-cell centres with align_corners=False; the reference's (Hk - 1) normalisation under "
        "align_corners=True shifts samples by half a pixel and divides by zero on 1-pixel sides. Offset bound "
        "offset_range_factor / Hk keeps the reference's range in pixels.",
        "Bilinear sampling in float32, cast back to the input dtype.",
        "Heads and groups fall back to divisors instead of asserting.",
        "With ksize == stride the offset input is padded to a multiple of the stride.",
        "scaled_dot_product_attention replaces the explicit softmax (same math); dropout (0 by default) is omitted.",
    ),
    constraints=(
        "n_heads must divide C; falls back to the largest divisor of C not above n_heads",
        "n_groups must divide the heads; falls back to the largest divisor of the heads not above n_groups",
        "Cost grows as (H*W)^2 / stride^2 per head: like global attention, meant for P4/P5-sized maps",
    ),
    arg_help={
        "n_heads": "attention heads",
        "n_groups": "offset groups: channel groups that share one predicted offset field",
        "stride": "key-grid stride: Hk = H / stride sampled keys per column (1 = as many keys as queries)",
        "offset_range_factor": "offset bound in half key cells (tanh-scaled); negative = unbounded, clamped to the map",
        "ksize": "kernel of the depthwise convolution in the offset network",
    },
    ranges={
        "n_heads": {"min": 1, "below_c1": True},
        "n_groups": {"min": 1, "below_c1": True},
        "stride": {"min": 1},
        "offset_range_factor": {"min": 0},
        "ksize": {"min": 1, "odd": True},
    },
)
class DAttention(AttentionModule):
    """Multi-head attention over keys sampled at data-dependent deformed positions (deformable attention)."""

    def __init__(
        self,
        c1: int,
        n_heads: int = 8,
        n_groups: int = 4,
        stride: int = 1,
        offset_range_factor: float = 4.0,
        ksize: int = 3,
    ) -> None:
        super().__init__()
        self.n_heads = largest_divisor_at_most(c1, n_heads)
        self.n_groups = largest_divisor_at_most(self.n_heads, n_groups)
        self.head_channels = c1 // self.n_heads
        self.group_channels = c1 // self.n_groups
        self.scale = self.head_channels**-0.5
        self.stride = stride
        self.pad_offset_input = ksize == stride and stride > 1
        self.offset_range_factor = float(offset_range_factor)
        gc = self.group_channels
        self.conv_offset = nn.Sequential(
            nn.Conv2d(gc, gc, ksize, stride, ksize // 2 if ksize != stride else 0, groups=gc),
            _ChannelLayerNorm(gc),
            nn.GELU(),
            nn.Conv2d(gc, 2, 1, bias=False),
        )
        self.proj_q = nn.Conv2d(c1, c1, 1)
        self.proj_k = nn.Conv2d(c1, c1, 1)
        self.proj_v = nn.Conv2d(c1, c1, 1)
        self.proj_out = nn.Conv2d(c1, c1, 1)
        self.rpe_table = nn.Conv2d(c1, c1, 3, padding=1, groups=c1)  # dwc_pe positional encoding

    def sample_positions(self, q: torch.Tensor) -> torch.Tensor:
        """Normalised (x, y) sampling grid, (N * groups) x Hk x Wk x 2, in float32."""
        n, h, w = q.shape[0], q.shape[2], q.shape[3]
        q_off = q.reshape(n * self.n_groups, self.group_channels, h, w)
        if self.pad_offset_input:
            q_off = pad_to_multiple(q_off, self.stride)[0]
        offset = self.conv_offset(q_off).float()
        hk, wk = int(offset.shape[2]), int(offset.shape[3])
        ref_y = (torch.arange(hk, device=q.device, dtype=torch.float32) + 0.5) * (2.0 / hk) - 1.0
        ref_x = (torch.arange(wk, device=q.device, dtype=torch.float32) + 0.5) * (2.0 / wk) - 1.0
        off_y, off_x = offset[:, 0], offset[:, 1]
        factor = self.offset_range_factor
        if factor >= 0:
            off_y = off_y.tanh() * (factor / hk)
            off_x = off_x.tanh() * (factor / wk)
        pos = torch.stack((off_x + ref_x.view(1, 1, wk), off_y + ref_y.view(1, hk, 1)), -1)
        return pos if factor >= 0 else pos.clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.proj_q(x)
        grid = self.sample_positions(q)
        hk, wk = int(grid.shape[1]), int(grid.shape[2])
        sampled = F.grid_sample(
            x.reshape(n * self.n_groups, self.group_channels, h, w).float(),
            grid,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        ).to(x.dtype)
        sampled = sampled.reshape(n, c, 1, hk * wk)
        heads, hc = self.n_heads, self.head_channels
        # Contiguous head-major layouts: CPU's fused attention kernel falls back to the slow math path otherwise.
        k = self.proj_k(sampled).reshape(n, heads, hc, hk * wk).transpose(2, 3).contiguous()
        v = self.proj_v(sampled).reshape(n, heads, hc, hk * wk).transpose(2, 3).contiguous()
        qh = q.reshape(n, heads, hc, h * w).transpose(2, 3).contiguous()
        out = F.scaled_dot_product_attention(qh, k, v, scale=self.scale)  # N x heads x HW x hc
        out = out.transpose(2, 3).reshape(n, c, h, w) + self.rpe_table(q)
        return self.proj_out(out)
