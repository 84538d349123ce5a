"""Bi-Level Routing Attention of BiFormer.

Zhu, Wang, Ke, Zhang, Lau. "BiFormer: Vision Transformer with Bi-Level Routing Attention", CVPR 2023.
https://arxiv.org/abs/2303.08810  Reference: https://github.com/rayleizhu/BiFormer (ops/bra_legacy.py,
BiLevelRoutingAttention with its defaults: qk_dim = dim, param_attention "qkvo", kv_downsample_mode "identity",
no parametric / differentiable / soft routing, side_dwconv 3).

The map is cut into an n_win x n_win grid of regions. Region-level queries and keys (region means) pick, for each
region, the topk most related regions (coarse routing); each pixel then attends to all pixels of those regions (fine
attention). A depthwise 3x3 convolution on V (LePE) is added and a linear layer projects the output.

Deviations from the reference:
- Any H x W: n_win is the largest number of regions per side, not an exact count. Regions are
  ceil(H / n_win) x ceil(W / n_win) pixels, the grid has ceil(H / region_h) x ceil(W / region_w) regions (at most
  n_win per side, fewer on small maps: one region on a 1x1 map), and the map is padded bottom/right to fill it and
  cropped back. The reference asserts H and W are multiples of n_win (or, with auto_pad, pads up to 6 rows and
  columns of zeros per side, leaving whole regions of padding on small maps).
- Padding never acts as a key: padded pixels are masked out of the fine attention and region means average real
  pixels only (the reference's auto_pad lets the padded zeros' projections take part in both).
- topk is clipped to the number of regions.
- q/k/v are projected and LePE is convolved on the unpadded map (zero padding for the 3x3 LePE, as a plain conv).
- Kept as in the reference: the fine attention is scaled by qk_dim ** -0.5 (the full width, not a head's), which makes
  the softmax num_heads ** 0.5 times flatter than per-head scaling; it is the reference's behaviour and its trained
  weights assume it, so it is not changed here.
- num_heads falls back to the largest divisor of c1 not above it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import ceil_div, largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=(
        "BRA",
        "BiFormer",
        "BiLevelRoutingAttention_nchw",
        "BiLevelRoutingAttentionNCHW",
        "BRAttention",
        "BiFormerAttention",
    ),
    category="self-attention",
    paper="BiFormer: Vision Transformer with Bi-Level Routing Attention",
    venue="CVPR",
    year=2023,
    link="https://arxiv.org/abs/2303.08810",
    reference="https://github.com/rayleizhu/BiFormer",
    deviations=(
        "n_win is the maximum number of regions per side: regions are ceil(H/n_win) x ceil(W/n_win) pixels and the "
        "map is padded to fill the grid and cropped back (the reference asserts divisibility by n_win).",
        "Padded pixels are masked out as keys and excluded from region means.",
        "topk is clipped to the number of regions.",
        "q/k/v and LePE are computed on the unpadded map.",
        "num_heads falls back to the largest divisor of c1 not above it.",
    ),
    constraints=(
        "num_heads must divide c1; falls back to the largest divisor of c1 not above num_heads.",
        "Small maps get fewer regions (1x1 -> one region); topk is clipped to the number of regions.",
    ),
    arg_help={
        "n_win": "maximum number of regions per side (reference: exact number, the map must be divisible)",
        "num_heads": "number of heads of the fine attention",
        "topk": "number of routed regions each region attends to",
        "side_dwconv": "kernel of the depthwise LePE convolution on V (0 disables it)",
    },
    ranges={
        "n_win": {"min": 1},
        "num_heads": {"min": 1, "below_c1": True},
        "topk": {"min": 1},
        "side_dwconv": {"min": 0, "odd": True},
    },
    fork_args=("num_heads", "n_win"),
)
class BiLevelRoutingAttention(AttentionModule):
    """Region-to-region top-k routing, then token attention inside the routed regions, plus a depthwise LePE."""

    def __init__(self, c1: int, n_win: int = 7, num_heads: int = 8, topk: int = 4, side_dwconv: int = 3) -> None:
        super().__init__()
        self.n_win = max(n_win, 1)
        self.num_heads = largest_divisor_at_most(c1, num_heads)
        self.topk = max(topk, 1)
        self.qk_dim = c1
        self.route_scale = self.qk_dim**-0.5
        self.scale = self.qk_dim**-0.5  # the reference's scale (full width), kept for fidelity
        self.qkv = nn.Linear(c1, 2 * self.qk_dim + c1)
        self.wo = nn.Linear(c1, c1)
        self.lepe = nn.Conv2d(c1, c1, side_dwconv, padding=side_dwconv // 2, groups=c1) if side_dwconv > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        h, w = int(h), int(w)
        rh, rw = ceil_div(h, self.n_win), ceil_div(w, self.n_win)  # region size
        nh, nw = ceil_div(h, rh), ceil_div(w, rw)  # regions per side (every region holds a real pixel)
        p, t = nh * nw, rh * rw
        qkv = self.qkv(x.permute(0, 2, 3, 1))  # B, H, W, 2qk + C
        v_map = qkv[..., 2 * self.qk_dim :].permute(0, 3, 1, 2)
        lepe = self.lepe(v_map) if self.lepe is not None else None
        pad_b, pad_r = nh * rh - h, nw * rw - w
        if pad_b or pad_r:
            qkv = F.pad(qkv, (0, 0, 0, pad_r, 0, pad_b))
        # Regions: B (nh rh) (nw rw) C -> B, p, t, C
        regions = qkv.reshape(b, nh, rh, nw, rw, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, p, t, -1)
        q, k, v = regions.split([self.qk_dim, self.qk_dim, c], dim=-1)
        valid = torch.ones(1, h, w, 1, device=x.device, dtype=x.dtype)
        valid = F.pad(valid, (0, 0, 0, pad_r, 0, pad_b)).reshape(nh, rh, nw, rw).permute(0, 2, 1, 3).reshape(p, t)
        count = valid.sum(dim=-1, keepdim=True)  # p, 1
        # Coarse routing on region means (not differentiable, as the reference's default).
        q_win = (q.sum(dim=2) / count).detach()
        k_win = (k.sum(dim=2) / count).detach()
        logits = (q_win * self.route_scale) @ k_win.transpose(-2, -1)  # B, p, p
        topk = min(self.topk, p)
        r_idx = logits.topk(topk, dim=-1).indices  # B, p, topk
        # Gather the routed regions' keys and values: one flat index_select, no p x p expansion.
        flat = (r_idx + torch.arange(b, device=x.device).view(b, 1, 1) * p).reshape(-1)
        kv = torch.cat([k, v], dim=-1).reshape(b * p, t, -1).index_select(0, flat)  # B*p*topk, t, qk+C
        kv = kv.reshape(b * p, topk * t, -1)
        key_valid = valid[r_idx.reshape(-1)].reshape(b * p, 1, 1, topk * t) > 0
        m = self.num_heads
        k_sel, v_sel = kv.split([self.qk_dim, c], dim=-1)
        k_sel = k_sel.reshape(b * p, topk * t, m, -1).permute(0, 2, 3, 1)  # Bp, m, d, topk*t
        v_sel = v_sel.reshape(b * p, topk * t, m, -1).transpose(1, 2)  # Bp, m, topk*t, d
        q_pix = q.reshape(b * p, t, m, -1).transpose(1, 2)  # Bp, m, t, d
        attn = ((q_pix * self.scale) @ k_sel).masked_fill(~key_valid, float("-inf")).softmax(dim=-1)
        out = (attn @ v_sel).transpose(1, 2).reshape(b, nh, nw, rh, rw, c)  # regions back to the map
        out = out.permute(0, 1, 3, 2, 4, 5).reshape(b, nh * rh, nw * rw, c)[:, :h, :w]
        if lepe is not None:
            out = out + lepe.permute(0, 2, 3, 1)
        return self.wo(out).permute(0, 3, 1, 2)
