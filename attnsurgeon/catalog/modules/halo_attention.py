"""Halo attention (blocked local self-attention with a halo).

Vaswani, Ramachandran, Srinivas, Parmar, Hechtman, Shlens. "Scaling Local Self-Attention for Parameter Efficient
Visual Backbones", CVPR 2021. https://arxiv.org/abs/2103.12731
Reference: https://github.com/lucidrains/halonet-pytorch (the implementation the YOLO HaloAttention tutorials copy).

The image is cut into block x block query blocks; each block attends to the (block + 2 halo)^2 window around it,
with 2-D relative position logits (separate height and width tables, as in the reference).

Deviations from the reference:
- BUG FIX: the reference unfolds a map of ones and masks where it is *true*, i.e. it masks the real keys and keeps the
  zero padding; interior blocks (all keys real) get every logit set to -max and attend uniformly. Here the padded
  keys (the halo outside the image and the padding added for divisibility) are masked.
- H and W need not be multiples of block_size: the map is zero-padded to a multiple and cropped back (the added
  rows/columns are masked as keys too). The reference asserts divisibility.
- Keys and values are projected per pixel before the halo windows are gathered (to_kv is bias-free, so projecting
  zero padding gives zero: identical maths) instead of projecting every unfolded copy: (block+2 halo)^2 / block^2
  fewer multiply-adds. The windows are gathered with one index_select by fixed pixel indices (exported to ONNX as
  Gather) straight into the per-head layout the matmuls use.
- halo_size = 0 is allowed (plain blocked attention); the reference asserts halo_size > 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import ceil_div, crop_to
from attnsurgeon.catalog.registry import register_module


def _relative_index(block: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column table indices (block^2 x window^2) of the reference's relative embedding lookup.

    A query at (r, c) inside its block and a key at (i, j) inside its window use rel_height[i - r + window - 1] and
    rel_width[j - c + window - 1] (what the reference's rel_to_abs trick computes), so the table is indexed by the
    key-query offset shifted by a constant.
    """
    q = torch.arange(block)
    k = torch.arange(window)
    rel = k[None, :] - q[:, None] + window - 1  # block x window
    idx_h = rel[:, None, :, None].expand(block, block, window, window).reshape(block * block, window * window)
    idx_w = rel[None, :, None, :].expand(block, block, window, window).reshape(block * block, window * window)
    return idx_h, idx_w


def _windows(h: int, w: int, block: int, halo: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat pixel indices (blocks window^2) into the map padded by halo (top/left) and to a multiple of block plus
    halo (bottom/right), and the (blocks, 1, window^2) mask of window positions that are not pixels of the image."""
    window = block + 2 * halo
    nh, nw = ceil_div(h, block), ceil_div(w, block)
    width = nw * block + 2 * halo
    off = torch.arange(window, device=device)
    rows = (torch.arange(nh, device=device) * block)[:, None] + off  # nh window: padded-map row of each position
    cols = (torch.arange(nw, device=device) * block)[:, None] + off  # nw window
    index = rows[:, None, :, None] * width + cols[None, :, None, :]  # nh nw window window
    real_r = (rows >= halo) & (rows < h + halo)
    real_c = (cols >= halo) & (cols < w + halo)
    real = real_r[:, None, :, None] & real_c[None, :, None, :]
    return index.flatten(), ~real.reshape(nh * nw, 1, window * window)


@register_module(
    aliases=("HaloAttn", "HaloNetAttention"),
    category="self-attention",
    paper="Scaling Local Self-Attention for Parameter Efficient Visual Backbones",
    venue="CVPR",
    year=2021,
    link="https://arxiv.org/abs/2103.12731",
    reference="https://github.com/lucidrains/halonet-pytorch",
    deviations=(
        "Bug fix: the reference masks the real keys instead of the padding (mask of ones, masked where true), so "
        "interior blocks attend uniformly; here only padded keys are masked.",
        "H, W need not be multiples of block_size: zero-pad to a multiple and crop back, masking the added keys; the "
        "reference asserts divisibility.",
        "Keys/values are projected per pixel before the halo windows are gathered (bias-free projection, so the "
        "result is identical) rather than once per unfolded copy.",
        "halo_size = 0 (plain blocked attention) is allowed; the reference asserts halo_size > 0.",
        "Defaults [2, 1] follow the YOLO HaloAttention tutorials; the paper's HaloNets use block 8, halo 3.",
    ),
    constraints=(
        "inner width heads * dim_head is independent of c1 (to_q/to_kv project c1 -> heads * dim_head)",
        "H, W not divisible by block_size are padded inside and cropped back; padded keys are masked",
    ),
    arg_help={
        "block_size": "side of the query blocks",
        "halo_size": "halo width: each block attends to a (block_size + 2 * halo_size)^2 window",
        "dim_head": "channels per attention head",
        "heads": "number of attention heads",
    },
    ranges={
        "block_size": {"min": 1},
        "halo_size": {"min": 0},
        "dim_head": {"min": 1, "width": True},
        "heads": {"min": 1},
    },
)
class HaloAttention(AttentionModule):
    """Blocked local self-attention: each query block attends to its block plus a halo of neighbouring pixels."""

    def __init__(self, c1: int, block_size: int = 2, halo_size: int = 1, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        if block_size < 1 or halo_size < 0:
            raise ValueError(f"HaloAttention needs block_size >= 1 and halo_size >= 0, got {block_size}, {halo_size}")
        self.block = block_size
        self.halo = halo_size
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head**-0.5
        self.window = block_size + 2 * halo_size
        inner = dim_head * heads
        self.to_q = nn.Linear(c1, inner, bias=False)
        self.to_kv = nn.Linear(c1, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, c1)
        # same tables (and sizes) as the reference's RelPosEmb: (2 * window - 1) x dim_head each
        self.rel_height = nn.Parameter(torch.randn(2 * self.window - 1, dim_head) * self.scale)
        self.rel_width = nn.Parameter(torch.randn(2 * self.window - 1, dim_head) * self.scale)
        # flat positions into the per-query logit table [height logits | width logits] of q against both tables
        idx_h, idx_w = _relative_index(block_size, self.window)
        width = 2 * (2 * self.window - 1)
        row = torch.arange(block_size * block_size)[:, None] * width
        self.register_buffer("idx_h", (row + idx_h).flatten(), persistent=False)
        self.register_buffer("idx_w", (row + idx_w + 2 * self.window - 1).flatten(), persistent=False)

    def _attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """Attention weights (N, heads, blocks, block^2, window^2), values, and the padded geometry."""
        n, _, h, w = x.shape
        b, heads, d, kw, halo = self.block, self.heads, self.dim_head, self.window, self.halo
        nh, nw = ceil_div(h, b), ceil_div(w, b)
        hp, wp = nh * b, nw * b
        gather, pad_key = _windows(h, w, b, halo, x.device)

        # queries: N Hp Wp (heads d) -> N heads blocks block^2 d
        xl = F.pad(x, (0, wp - w, 0, hp - h)).permute(0, 2, 3, 1)
        q = self.to_q(xl * self.scale).reshape(n, nh, b, nw, b, heads, d).permute(0, 5, 1, 3, 2, 4, 6)
        q = q.reshape(n, heads, nh * nw, b * b, d)

        # keys/values: project every pixel of the zero-padded map once (bias-free, so the padding stays zero), then
        # gather each block's halo window by fixed indices: N (2 heads) (blocks window^2) d, ready for matmul
        xk = F.pad(x, (halo, halo + wp - w, halo, halo + hp - h)).permute(0, 2, 3, 1)
        kv = self.to_kv(xk).reshape(n, -1, 2 * heads, d).transpose(1, 2)
        kv = kv.index_select(2, gather).reshape(n, 2, heads, nh * nw, kw * kw, d)
        k, v = kv[:, 0], kv[:, 1]

        # relative logits: q against both small tables, then pick each (query, key) pair's entries by fixed indices
        table = (q @ torch.cat((self.rel_height, self.rel_width)).t()).flatten(-2)  # N heads blocks (block^2 2(2kw-1))
        sim = table.index_select(-1, self.idx_h) + table.index_select(-1, self.idx_w)
        # content logits as k @ q^T (faster than q @ k^T for the gathered keys' layout), added in query-major layout
        sim = sim.unflatten(-1, (b * b, kw * kw)).add_((k @ q.transpose(-1, -2)).transpose(-1, -2))

        # mask keys that are not real pixels: the halo beyond the border and the padding added for divisibility
        sim = sim.masked_fill(pad_key, torch.finfo(sim.dtype).min)
        return sim.softmax(dim=-1), v, (n, h, w, nh, nw)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax weights, shaped (N, heads, blocks, block_size^2, window^2); blocks in row-major order."""
        return self._attend(x)[0]

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The attention each pixel of the input ``x`` receives (N x H x W): the sum over the queries (pixels of the
        image, not the padding to a multiple of block_size) whose window holds it of their weights on it, averaged
        over heads."""
        n, _, h, w = x.shape
        b, halo = self.block, self.halo
        hp, wp = ceil_div(h, b) * b, ceil_div(w, b) * b
        inside = torch.zeros(hp, wp, device=x.device)
        inside[:h, :w] = 1  # query pixels, in the (blocks, block^2) order of the weights
        inside = inside.reshape(hp // b, b, wp // b, b).permute(0, 2, 1, 3).reshape(-1, b * b, 1)
        weights = self.attention_weights(x)
        received = (weights * inside.to(weights.dtype)).sum(3).mean(1).flatten(1)  # N (blocks window^2)
        gather, _ = _windows(h, w, b, halo, x.device)
        padded = received.new_zeros(n, (hp + 2 * halo) * (wp + 2 * halo)).index_add_(1, gather, received)
        return padded.reshape(n, hp + 2 * halo, wp + 2 * halo)[:, halo : halo + h, halo : halo + w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn, v, (n, h, w, nh, nw) = self._attend(x)
        b, heads, d = self.block, self.heads, self.dim_head
        out = attn @ v  # N heads blocks block^2 d
        out = out.reshape(n, heads, nh, nw, b, b, d).permute(0, 2, 4, 3, 5, 1, 6).reshape(n, nh * b, nw * b, heads * d)
        out = self.to_out(out).permute(0, 3, 1, 2)
        return crop_to(out, h, w)
