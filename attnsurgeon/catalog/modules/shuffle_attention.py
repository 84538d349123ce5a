"""Shuffle Attention (SA-Net).

Zhang, Yang. "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks", ICASSP 2021.
https://arxiv.org/abs/2102.00240  DOI: 10.1109/ICASSP39728.2021.9414568
Reference: https://github.com/wofmanaf/SA-Net (models/sa_resnet.py, sa_layer; groups=64 in SA-ResNet, the YOLO
ports use G=8, which is this module's default).

Deviations from the reference:
- sweight (the scale of the GroupNorm-ed spatial descriptor) starts at 0.01 instead of 0. With 0, the GroupNorm's
  affine parameters receive exactly zero gradient at initialisation (they only reach the output through sweight);
  0.01 keeps the initial gate within ~0.2% of the reference's constant sigmoid(1) while every parameter trains from
  the first step. cweight, cbias and sbias keep the reference initialisation (0, 1, 1).
- Group fallback: the reference needs 2*G to divide c1. Here G falls back to the largest g <= G with 2*g dividing
  c1; for odd c1, to the largest divisor g of c1 with c1/g >= 2, and each group is split into ceil/floor halves
  (channel/spatial) with the final two-way channel shuffle done by an index permutation.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module

_SWEIGHT_INIT = 0.01  # reference: 0, which leaves the GroupNorm affine parameters without gradient at init


def _shuffle_groups(c1: int, groups: int) -> int:
    even = [g for g in range(max(min(groups, c1 // 2), 1), 0, -1) if c1 % (2 * g) == 0]
    if even:
        return even[0]
    odd = [g for g in range(max(min(groups, c1), 1), 0, -1) if c1 % g == 0 and c1 // g >= 2]
    return odd[0] if odd else 1


@register_module(
    aliases=("SA", "SANet", "SALayer", "sa_layer", "ShuffleAttentionModule", "SAAttention"),
    category="channel+spatial",
    paper="SA-Net: Shuffle Attention for Deep Convolutional Neural Networks",
    venue="ICASSP",
    year=2021,
    link="https://arxiv.org/abs/2102.00240",
    reference="https://github.com/wofmanaf/SA-Net",
    deviations=(
        "sweight starts at 0.01 instead of 0, so the GroupNorm affine parameters get a gradient from the first step "
        "(with 0 their gradient is exactly zero at init); the initial gate differs from sigmoid(1) by < 0.3%.",
        "When 2*G does not divide c1, G falls back to the largest g <= G with 2*g | c1 (odd c1: the largest divisor "
        "g with c1/g >= 2, split into ceil/floor channel/spatial halves); the reference fails to reshape.",
    ),
    constraints=("groups = largest g <= G with 2*g dividing c1 (G itself when 2*G | c1); odd c1 uses uneven halves",),
    arg_help={"G": "number of channel groups; each group is split in half into a channel and a spatial branch"},
    ranges={"G": {"min": 1, "below_c1": True}},
)
class ShuffleAttention(AttentionModule):
    """Grouped channel and spatial gates on split halves of each group, recombined by a channel shuffle."""

    def __init__(self, c1: int, G: int = 8) -> None:
        super().__init__()
        self.groups = _shuffle_groups(c1, G)
        cg = c1 // self.groups
        self.split = ((cg + 1) // 2, cg // 2)  # channel half, spatial half (torch.chunk's sizes)
        c_ch, c_sp = self.split
        self.cweight = nn.Parameter(torch.zeros(1, c_ch, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, c_ch, 1, 1))
        self.sweight = nn.Parameter(torch.full((1, c_sp, 1, 1), _SWEIGHT_INIT))
        self.sbias = nn.Parameter(torch.ones(1, c_sp, 1, 1))
        self.gn = nn.GroupNorm(c_sp, c_sp)
        # Odd c1 cannot use the reshape form of the two-way shuffle; a fixed channel permutation does the same job.
        self.even_channels = c1 % 2 == 0
        self.register_buffer("shuffle_index", _interleave(c1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        gx = x.reshape(b * self.groups, c // self.groups, h, w)
        x0, x1 = torch.split(gx, self.split, dim=1)
        xn = x0 * torch.sigmoid(self.cweight * x0.mean(dim=(2, 3), keepdim=True) + self.cbias)
        # torch.group_norm, not self.gn(...): F.group_norm refuses one value per group in training (batch 1, 1x1 map,
        # a single group), where the normalised value is simply 0 and the result the GN bias.
        xn1 = torch.group_norm(x1, self.gn.num_groups, self.gn.weight, self.gn.bias, self.gn.eps)
        xs = x1 * torch.sigmoid(self.sweight * xn1 + self.sbias)
        out = torch.cat([xn, xs], dim=1).reshape(b, c, h, w)
        if self.even_channels:  # channel_shuffle(out, 2) of the reference
            return out.reshape(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)
        return out.index_select(1, self.shuffle_index)


def _interleave(c: int) -> torch.Tensor:
    """Odd-c generalisation of the two-way shuffle: alternate channels from the first ceil(c/2) and the rest."""
    first, second = torch.arange((c + 1) // 2), torch.arange((c + 1) // 2, c)
    out = torch.empty(c, dtype=torch.long)
    out[0::2], out[1::2] = first, second
    return out
