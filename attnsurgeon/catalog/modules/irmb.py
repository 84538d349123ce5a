"""Inverted Residual Mobile Block (iRMB) of EMO.

Zhang, Li, Li, Tian, Tai, Wang, Wang, Huang, Wu, Zhang. "Rethinking Mobile Block for Efficient Attention-based
Models", ICCV 2023. https://arxiv.org/abs/2301.01146  Reference: https://github.com/zhangzjn/EMO (model/emo.py, iRMB).

Configuration: the channel-preserving form the YOLO ports use (dim_in = dim_out, stride 1, skip on): BatchNorm input
norm, ReLU on V, window attention (window 7) with dim_head 32 as in EMO-5M's attention stages, exp_ratio 1.0,
depthwise 3x3 + BN + SiLU, no SE, bias-free q/k/v (qkv_bias False) and output projections, attn_pre False.

Deviations from the reference:
- The window is min(window_size, H) x min(window_size, W), so small maps (1x1, 7x7 at stride 32) are not padded to
  7x7; larger maps are padded bottom/right to a multiple and cropped back, as in the reference.
- Padded key positions are masked out of the softmax. The reference lets the zero-padded pixels act as keys (logit 0,
  value 0), which dilutes the attention of every window that holds padding.
- heads = c1 // dim_head needs dim_head to divide c1 (the reference asserts); otherwise dim_head falls back to the
  largest divisor of c1 not above it.
- BatchNorm layers use running statistics for a training call with a single value per channel (batch 1, 1x1 map),
  where plain BatchNorm raises.
- The reference's window partition ``(h1 n1) (w1 n2) -> (n1 n2) h1 w1`` is kept: a "window" is the grid of pixels
  spaced n1 = H / window apart (a dilated, image-wide sampling), not a contiguous block.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d, largest_divisor_at_most, pad_to_multiple
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("iRMBAttention", "EMO"),
    category="self-attention",
    paper="Rethinking Mobile Block for Efficient Attention-based Models",
    venue="ICCV",
    year=2023,
    link="https://arxiv.org/abs/2301.01146",
    reference="https://github.com/zhangzjn/EMO",
    deviations=(
        "Window side is min(window_size, H) by min(window_size, W); larger maps are padded and cropped as in the "
        "reference.",
        "Padded positions are masked out as keys (the reference lets zero padding take part in the softmax).",
        "dim_head falls back to the largest divisor of c1 not above it when it does not divide c1 (reference asserts).",
        "BatchNorm falls back to running statistics for a training call with one value per channel (batch 1, 1x1).",
    ),
    constraints=(
        "heads = c1 // dim_head; dim_head falls back to the largest divisor of c1 <= dim_head.",
        "Value width is int(c1 * exp_ratio), rounded up to a multiple of the head count.",
    ),
    arg_help={
        "dim_head": "channels per attention head (heads = c1 // dim_head)",
        "window_size": "side of the attention window (the reference's window_size; <= 0 means the whole map)",
        "exp_ratio": "expansion ratio of the value / depthwise width",
        "dw_ks": "kernel size of the depthwise convolution",
        "qkv_bias": "bias in the q/k and v 1x1 convolutions",
    },
    ranges={"dim_head": {"min": 1, "below_c1": True}, "exp_ratio": {"gt": 0}, "dw_ks": {"min": 1, "odd": True}},
    fork_defaults={"dim_head": 64},  # EMO's iRMB(dim_head=64), as forks copy it
)
class iRMB(AttentionModule):
    """Inverted residual block: window self-attention for V, then a depthwise conv, a projection and a skip."""

    def __init__(
        self,
        c1: int,
        dim_head: int = 32,
        window_size: int = 7,
        exp_ratio: float = 1.0,
        dw_ks: int = 3,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.dim_head = largest_divisor_at_most(c1, dim_head)
        self.num_head = c1 // self.dim_head
        self.window_size = window_size
        self.scale = self.dim_head**-0.5
        # V is split over the same heads, so its width is rounded up to a multiple of them (exact for exp_ratio 1).
        dim_mid = -(-max(int(c1 * exp_ratio), 1) // self.num_head) * self.num_head
        self.norm = SafeBatchNorm2d(c1)
        self.qk = nn.Conv2d(c1, 2 * c1, 1, bias=qkv_bias)
        self.v = nn.Sequential(nn.Conv2d(c1, dim_mid, 1, bias=qkv_bias), nn.ReLU(inplace=True))
        self.conv_local = nn.Sequential(
            nn.Conv2d(dim_mid, dim_mid, dw_ks, padding=dw_ks // 2, groups=dim_mid, bias=False),
            SafeBatchNorm2d(dim_mid),
            nn.SiLU(inplace=True),
        )
        self.proj = nn.Conv2d(dim_mid, c1, 1, bias=False)
        self.dim_mid = dim_mid

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        h, w = int(h), int(w)
        wh = h if self.window_size <= 0 else min(self.window_size, h)
        ww = w if self.window_size <= 0 else min(self.window_size, w)
        x, pad_b, pad_r = pad_to_multiple(x, wh, ww)
        n1, n2 = (h + pad_b) // wh, (w + pad_r) // ww
        nw, tokens = n1 * n2, wh * ww

        def windows(t: torch.Tensor) -> torch.Tensor:  # b c (wh n1) (ww n2) -> b, n1*n2, c, wh*ww
            bt, ch = t.shape[:2]
            return t.reshape(bt, ch, wh, n1, ww, n2).permute(0, 3, 5, 1, 2, 4).reshape(bt, nw, ch, tokens)

        heads, d = self.num_head, self.dim_head
        qk = windows(self.qk(x)).reshape(b, nw, 2, heads, d, tokens)
        q, k = qk[:, :, 0], qk[:, :, 1]  # b, nw, heads, d, tokens
        attn = torch.einsum("bnhdi,bnhdj->bnhij", q, k) * self.scale
        if pad_b or pad_r:
            valid = torch.ones(1, 1, h, w, device=x.device, dtype=x.dtype)
            valid = windows(pad_to_multiple(valid, wh, ww)[0]).reshape(1, nw, 1, 1, tokens) > 0
            attn = attn.masked_fill(~valid, float("-inf"))
        attn = attn.softmax(dim=-1)
        v = windows(self.v(x))  # b, nw, dim_mid, tokens
        v = v.reshape(b, nw, heads, self.dim_mid // heads, tokens)
        out = torch.einsum("bnhij,bnhdj->bnhdi", attn, v).reshape(b, n1, n2, self.dim_mid, wh, ww)
        out = out.permute(0, 3, 4, 1, 5, 2).reshape(b, self.dim_mid, wh * n1, ww * n2)
        return out[:, :, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self._window_attention(self.norm(x))
        x = x + self.conv_local(x)
        return shortcut + self.proj(x)
