"""SK: Selective Kernel convolution (attention over branches with different receptive fields).

Li, Wang, Hu, Yang. "Selective Kernel Networks", CVPR 2019. https://arxiv.org/abs/1903.06586
Reference: https://github.com/implus/SKNet (Caffe prototxt, models/sknet50.prototxt: the SK unit "3x3g32" +
"3x3g32d2" branches, global pool, fc1 (1x1 conv, no bias) + BN + ReLU, fc2 (no bias), softmax over branches).

Used here as a channel-preserving attention layer (c1 -> c1), with the paper's SKNet-50 settings M=2, G=32, r=16,
L=32. Branch m is a 3x3 grouped conv with dilation m+1 (3x3, then 3x3 dilated 2 = a 5x5 receptive field), each
followed by BN and ReLU, exactly as in the prototxt.

Deviations from the reference:
- The BatchNorm on the squeezed N x d x 1 x 1 vector (and the branch BatchNorms) use running statistics when a
  channel holds a single value in training (batch 1), where nn.BatchNorm2d raises. The BN parameters are kept, so
  the parameter count equals the reference; at batch >= 2 training behaves exactly like the reference.
- Group fallback: when G does not divide c1, the group count is the largest divisor of c1 that is <= G.
- d = max(c1 // r, L) as in the paper; the branches and softmax layout (fc2 output reshaped to N x M x C) follow
  the prototxt.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import SafeBatchNorm2d, largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("SKAttention", "SKConv", "SKNet", "SelectiveKernel"),
    category="convolutional attention",
    paper="Selective Kernel Networks",
    venue="CVPR",
    year=2019,
    link="https://arxiv.org/abs/1903.06586",
    reference="https://github.com/implus/SKNet",
    deviations=(
        "BatchNorm (on the squeezed vector and in the branches) uses running statistics when a channel has a single "
        "value in training (batch 1), where nn.BatchNorm2d raises; parameters are unchanged.",
        "When G does not divide c1, the group count falls back to the largest divisor of c1 that is <= G.",
    ),
    constraints=(
        "groups = largest divisor of c1 that is <= G (G itself when it divides c1)",
        "branch m uses a 3x3 conv with dilation m + 1 (receptive field 3 + 2m)",
    ),
    arg_help={
        "M": "number of branches (kernels with growing dilation)",
        "G": "groups of each branch convolution",
        "r": "reduction ratio of the squeeze vector, d = max(c1 / r, L)",
        "L": "minimum length d of the squeeze vector",
    },
    ranges={
        "M": {"min": 1},
        "G": {"min": 1, "below_c1": True},
        "r": {"min": 1, "below_c1": True},
        "L": {"min": 1, "width": True},
    },
)
class SK(AttentionModule):
    """Selective kernel: grouped branches with growing receptive fields fused by a softmax attention across branches."""

    def __init__(self, c1: int, M: int = 2, G: int = 32, r: int = 16, L: int = 32) -> None:
        super().__init__()
        groups = largest_divisor_at_most(c1, G)
        d = max(c1 // r, L)
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c1, c1, 3, padding=m + 1, dilation=m + 1, groups=groups, bias=False),
                SafeBatchNorm2d(c1),
                nn.ReLU(inplace=True),
            )
            for m in range(M)
        )
        self.fc = nn.Sequential(nn.Conv2d(c1, d, 1, bias=False), SafeBatchNorm2d(d), nn.ReLU(inplace=True))
        self.fcs = nn.Conv2d(d, M * c1, 1, bias=False)  # one fc producing all M attention vectors, as in the prototxt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([branch(x) for branch in self.branches], dim=1)  # (N, M, C, H, W)
        z = self.fc(feats.sum(dim=1).mean(dim=(2, 3), keepdim=True))  # fuse, squeeze: (N, d, 1, 1)
        attn = self.fcs(z).reshape(x.shape[0], len(self.branches), x.shape[1], 1, 1).softmax(dim=1)
        return (feats * attn).sum(dim=1)
