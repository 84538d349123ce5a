"""CloFormer's attention: AttnConv (high-frequency, local) plus pooled global attention (low-frequency).

Fan, He, Wang, Huang. "Rethinking Local Perception in Lightweight Vision Transformer", arXiv 2023.
https://arxiv.org/abs/2303.17803  Reference: https://github.com/qhfan/CloFormer (class ``EfficientAttention``;
the YOLOv8 CloFormer tutorials paste this class unchanged).

Heads are split into groups: each of the first groups runs AttnConv (1x1 qkv, depthwise k x k mixing of q, k, v,
context-aware weights tanh(MLP(q * k) * scale) gating v), the last group attends from every pixel to a
window_size-average-pooled copy of the map. The group outputs are concatenated and projected.

Deviations from the reference:
- BUG FIX: the low-frequency branch reshapes the pooled keys with (h * w) // window_size**2 tokens and AvgPool2d
  drops the remainder, so it fails unless H and W are multiples of window_size (20x20 fails for window 7). Here the
  map is pooled with ceil-sized windows (the border windows average only the real pixels), and the token count is
  the pooled map's real size.
- num_heads = 0 (the default) derives the heads from c1 with CloFormer's head width 16 (every CloFormer variant
  uses dim / heads = 16): heads = max(c1 // 16, groups in use), reduced to the largest divisor of c1.
- group_split is a proportion when it does not sum to the heads (e.g. the default (1, 1) = half local, half
  global, like CloFormer's third stage [4, 4]); it is taken literally when it does.
- Swish is nn.SiLU (the reference's MemoryEfficientSwish is the same function); dropout layers (0 in the
  reference's defaults) are omitted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import pad_to_multiple
from attnsurgeon.catalog.registry import register_module

CLOFORMER_HEAD_DIM = 16


def _resolve_heads(c1: int, num_heads: int, group_split: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """Heads that divide c1 and a split of them over the groups, following group_split literally or in proportion."""
    used = sum(1 for g in group_split if g > 0)
    heads = num_heads if num_heads > 0 else max(c1 // CLOFORMER_HEAD_DIM, used)
    heads = max(d for d in range(1, min(heads, c1) + 1) if c1 % d == 0)
    if sum(group_split) == heads:
        return heads, tuple(group_split)
    total = sum(group_split)
    share = [heads * g / total for g in group_split]
    alloc = [int(s) for s in share]
    # hand out the remaining heads by largest remainder, then make sure every requested group gets one if possible
    for i in sorted(range(len(share)), key=lambda i: alloc[i] - share[i])[: heads - sum(alloc)]:
        alloc[i] += 1
    for i, g in enumerate(group_split):
        if g > 0 and alloc[i] == 0:
            donor = max(range(len(alloc)), key=lambda j: alloc[j])
            if alloc[donor] > 1:
                alloc[donor] -= 1
                alloc[i] = 1
    return heads, tuple(alloc)


def _cell_mean(x: torch.Tensor, ws: int) -> torch.Tensor:
    """The mean of each ws x ws cell of a map whose H and W are multiples of ws (what ``avg_pool2d(x, ws, ws)``
    computes)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // ws, ws, w // ws, ws).mean(dim=(3, 5))


class _AttnMap(nn.Module):
    """The context-aware weight MLP of AttnConv: 1x1 conv, Swish, 1x1 conv."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.act_block = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.SiLU(), nn.Conv2d(dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act_block(x)


@register_module(
    aliases=("CloAttention", "CloFormerAttention", "AttnConv"),
    category="self-attention",
    paper="Rethinking Local Perception in Lightweight Vision Transformer",
    venue="arXiv",
    year=2023,
    link="https://arxiv.org/abs/2303.17803",
    reference="https://github.com/qhfan/CloFormer",
    deviations=(
        "Bug fix: the low-frequency branch failed unless H and W are multiples of window_size (it reshapes with "
        "(h*w)//window_size**2 tokens); here border windows are ceil-pooled over the real pixels only.",
        "num_heads = 0 derives heads from c1 with CloFormer's head width 16: max(c1 // 16, groups in use), reduced "
        "to the largest divisor of c1.",
        "group_split not summing to the heads is read as a proportion (default (1, 1): half local, half global).",
        "MemoryEfficientSwish is nn.SiLU (same function); dropouts (0 in the reference) are omitted.",
    ),
    constraints=(
        "len(kernel_sizes) + 1 == len(group_split): one AttnConv group per kernel size, then the global group",
        "heads are reduced to the largest divisor of c1 not above the request",
        "H, W not divisible by window_size: the pooled map covers the border with partial windows",
    ),
    arg_help={
        "num_heads": "attention heads; 0 = c1 // 16 (CloFormer's head width 16)",
        "group_split": "heads per group: one AttnConv group per kernel size, the last is the pooled global group; "
        "used as proportions when it does not sum to num_heads",
        "kernel_sizes": "depthwise kernel size of each AttnConv (high-frequency) group",
        "window_size": "average-pooling window (and stride) of the global (low-frequency) branch's keys/values",
    },
    ranges={
        "num_heads": {"min": 0, "below_c1": True},
        "group_split": {"min": 1},
        "kernel_sizes": {"min": 1, "odd": True},
        "window_size": {"min": 1},
    },
)
class EfficientAttention(AttentionModule):
    """CloFormer attention: AttnConv groups for high-frequency local context plus a pooled global-attention group."""

    def __init__(
        self,
        c1: int,
        num_heads: int = 0,
        group_split: tuple[int, ...] = (1, 1),
        kernel_sizes: tuple[int, ...] = (7,),
        window_size: int = 7,
    ) -> None:
        super().__init__()
        group_split, kernel_sizes = tuple(group_split), tuple(kernel_sizes)
        if len(kernel_sizes) + 1 != len(group_split):
            raise ValueError(
                f"EfficientAttention needs len(kernel_sizes) + 1 == len(group_split), got {kernel_sizes} and "
                f"{group_split}"
            )
        heads, split = _resolve_heads(c1, num_heads, group_split)
        self.num_heads = heads
        self.group_split = split
        self.dim_head = c1 // heads
        self.scalor = self.dim_head**-0.5
        self.window_size = max(window_size, 1)
        self.local_kernels = tuple(k for k, g in zip(kernel_sizes, split, strict=False) if g > 0)
        d = self.dim_head
        convs, act_blocks, qkvs = [], [], []
        for k, g in zip(kernel_sizes, split, strict=False):
            if g == 0:
                continue
            convs.append(nn.Conv2d(3 * d * g, 3 * d * g, k, padding=k // 2, groups=3 * d * g))
            act_blocks.append(_AttnMap(d * g))
            qkvs.append(nn.Conv2d(c1, 3 * d * g, 1))
        self.convs = nn.ModuleList(convs)
        self.act_blocks = nn.ModuleList(act_blocks)
        self.qkvs = nn.ModuleList(qkvs)
        self.global_heads = split[-1]
        if self.global_heads:
            self.global_q = nn.Conv2d(c1, self.global_heads * d, 1)
            self.global_kv = nn.Conv2d(c1, 2 * self.global_heads * d, 1)
        self.proj = nn.Conv2d(c1, c1, 1)

    def _high_frequency(
        self, x: torch.Tensor, to_qkv: nn.Module, mixer: nn.Module, attn_map: nn.Module
    ) -> torch.Tensor:
        q, k, v = mixer(to_qkv(x)).chunk(3, dim=1)
        return torch.tanh(attn_map(q * k) * self.scalor) * v

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over window_size x window_size cells; border cells (partial after padding) average real pixels only.

        The real-pixel fraction is a reshape and a mean over a map of ones, not ``avg_pool2d``: OpenVINO's CPU plugin
        has no kernel for a pooling node whose input is a constant, so yolo11n with this module did not compile there
        (at 160 and 640). The features keep their 4-D pool: as a 6-D reshape, pnnx left NCNN a Reshape it could not
        load."""
        ws = self.window_size
        if ws == 1:
            return x
        xp, ph, pw = pad_to_multiple(x, ws)
        pooled = F.avg_pool2d(xp, ws, ws)
        if ph or pw:
            # fraction of real pixels per cell (a constant for a given size) turns the zero-padded mean into the mean
            pooled = pooled / _cell_mean(pad_to_multiple(torch.ones_like(x[:1, :1]), ws)[0], ws)
        return pooled

    def _low_frequency(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        m, d = self.global_heads, self.dim_head
        q = self.global_q(x).reshape(n, m, d, h * w).transpose(-1, -2)  # N m hw d
        kv = self.global_kv(self._pool(x))
        k, v = kv.reshape(n, 2, m, d, -1).unbind(1)  # N m d t
        attn = ((q * self.scalor) @ k).softmax(dim=-1)  # N m hw t
        out = attn @ v.transpose(-1, -2)  # N m hw d
        return out.transpose(-1, -2).reshape(n, m * d, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = [
            self._high_frequency(x, to_qkv, mixer, attn_map)
            for to_qkv, mixer, attn_map in zip(self.qkvs, self.convs, self.act_blocks, strict=True)
        ]
        if self.global_heads:
            res.append(self._low_frequency(x))
        return self.proj(torch.cat(res, dim=1))
