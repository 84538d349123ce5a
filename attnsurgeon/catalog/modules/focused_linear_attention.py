"""Focused Linear Attention of the FLatten Transformer.

Han, Pan, Han, Song, Huang. "FLatten Transformer: Vision Transformer using Focused Linear Attention", ICCV 2023.
https://arxiv.org/abs/2308.00442  Reference: https://github.com/LeapLabTHU/FLatten-Transformer (models/flatten_pvt.py,
FocusedLinearAttention, with sr_ratio 1 and qkv_bias True as the FLatten-PVT models configure it).

Linear attention with the focused kernel phi_p(x) = ||x|| * x**p / ||x**p|| on ReLU features (p = focusing_factor),
a learnable per-channel temperature (softplus), and a depthwise convolution on V added to the output to restore
feature diversity (rank).

Deviations from the reference:
- Channel-preserving 2D form: NCHW in, tokens inside, NCHW out.
- No absolute positional encoding: the reference adds a learned (num_patches x dim) table to the keys, which ties it
  to one input size; YOLO maps vary. The depthwise convolution on V still gives positional information. Parameter
  count = reference minus num_patches * dim.
- The depthwise convolution reshapes V with the real H x W; the reference uses sqrt(N) x sqrt(N), which breaks for
  non-square maps.
- The focusing function and the linear-attention products are computed in float32 under float16/bfloat16: x**3 of
  the 1e-6 floor underflows in half precision and turns the normalisation into 0/0.
- Only sr_ratio 1 (no spatial-reduction convolution).
- num_heads falls back to the largest divisor of c1 not above it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("FLatten", "FLattenAttention", "FocusedLinearAttn"),
    category="self-attention",
    paper="FLatten Transformer: Vision Transformer using Focused Linear Attention",
    venue="ICCV",
    year=2023,
    link="https://arxiv.org/abs/2308.00442",
    reference="https://github.com/LeapLabTHU/FLatten-Transformer",
    deviations=(
        "Channel-preserving 2D form (NCHW in and out).",
        "No fixed-size absolute positional encoding on the keys (it ties the reference to one resolution); the "
        "parameter count is the reference's minus num_patches * c1.",
        "The depthwise convolution on V uses the real H x W (the reference assumes a square sqrt(N) x sqrt(N) map).",
        "Focusing function and attention products in float32 under half precision (x**3 of 1e-6 underflows).",
        "sr_ratio fixed to 1 (no spatial-reduction branch).",
        "num_heads falls back to the largest divisor of c1 not above it.",
    ),
    constraints=("num_heads must divide c1; falls back to the largest divisor of c1 not above num_heads.",),
    arg_help={
        "num_heads": "number of attention heads",
        "focusing_factor": "focusing power p of the kernel phi_p",
        "kernel_size": "kernel of the depthwise convolution on V (per head)",
        "qkv_bias": "bias in the q and kv projections",
    },
    ranges={
        "num_heads": {"min": 1, "below_c1": True},
        "focusing_factor": {"gt": 0},
        "kernel_size": {"min": 1, "odd": True},
    },
)
class FocusedLinearAttention(AttentionModule):
    """Linear attention with a focused (power-sharpened) ReLU kernel plus a depthwise convolution on V."""

    def __init__(
        self, c1: int, num_heads: int = 8, focusing_factor: int = 3, kernel_size: int = 5, qkv_bias: bool = True
    ) -> None:
        super().__init__()
        self.num_heads = largest_divisor_at_most(c1, num_heads)
        head_dim = c1 // self.num_heads
        self.focusing_factor = focusing_factor
        self.q = nn.Linear(c1, c1, bias=qkv_bias)
        self.kv = nn.Linear(c1, 2 * c1, bias=qkv_bias)
        self.proj = nn.Linear(c1, c1)
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2, groups=head_dim)
        self.scale = nn.Parameter(torch.zeros(1, 1, c1))

    def _focus(self, t: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        t = (F.relu(t) + 1e-6) / scale
        norm = t.norm(dim=-1, keepdim=True)
        t = t**self.focusing_factor
        return t / t.norm(dim=-1, keepdim=True) * norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        m = self.num_heads
        tokens = x.flatten(2).transpose(1, 2)  # B, N, C
        n = tokens.shape[1]
        q = self.q(tokens)
        k, v = self.kv(tokens).chunk(2, dim=-1)
        dtype = q.dtype
        compute = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        scale = F.softplus(self.scale.to(compute))
        q, k = self._focus(q.to(compute), scale), self._focus(k.to(compute), scale)
        q, k, vh = (t.reshape(b, n, m, c // m).transpose(1, 2) for t in (q, k, v.to(compute)))  # B, m, N, d
        z = 1.0 / (q @ k.sum(dim=2).unsqueeze(-1) + 1e-6)  # B, m, N, 1
        dk, dv = q.shape[-1], vh.shape[-1]
        # Pick the cheaper association order (static shapes): (k^T v) first unless N is small.
        linear = n * n * (dk + dv) > dk * dv * (n + n)
        out = q @ (k.transpose(-2, -1) @ vh) if linear else (q @ k.transpose(-2, -1)) @ vh
        out = (out * z).to(dtype)
        # Depthwise conv on V, per head, over the real H x W grid.
        fmap = v.reshape(b, h, w, m, c // m).permute(0, 3, 4, 1, 2).reshape(b * m, c // m, h, w)
        fmap = self.dwc(fmap).reshape(b, m, c // m, n).transpose(-1, -2)
        out = (out + fmap).transpose(1, 2).reshape(b, n, c)
        return self.proj(out).transpose(1, 2).reshape(b, c, h, w)
