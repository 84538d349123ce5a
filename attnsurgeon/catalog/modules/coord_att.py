"""Coordinate Attention.

Hou, Zhou, Feng. "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021.
https://arxiv.org/abs/2103.02907  Reference: https://github.com/houqb/CoordAttention (class ``CoordAtt``).

Deviations: the output has c1 channels (the reference's separate ``oup`` must equal ``inp`` for the gating product
anyway); the pooling is a plain mean over one axis and h_swish is ``F.hardswish`` (identical maths, exportable);
in train mode a batch of one 1x1 map is normalised with BatchNorm's running statistics (batch statistics of two
equal values would zero the branch and its gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("CoordAttention", "CoordinateAttention", "CA", "CoordAttn", "CA_Block", "CABlock", "CoordAttModule"),
    category="channel+spatial",
    paper="Coordinate Attention for Efficient Mobile Network Design",
    venue="CVPR",
    year=2021,
    link="https://arxiv.org/abs/2103.02907",
    reference="https://github.com/houqb/CoordAttention",
    deviations=(
        "Output channels equal c1: the reference's separate 'oup' argument must equal 'inp' for the final product "
        "identity * a_w * a_h, so it is dropped.",
        "h_swish is F.hardswish (x * relu6(x + 3) / 6, the same function) and the directional pools are means over "
        "one axis (the same as AdaptiveAvgPool2d((None, 1)) / ((1, None))).",
        "Train mode with batch 1 and a 1x1 map normalises with BatchNorm's running statistics: the two pooled values "
        "are equal, so batch statistics would zero the branch (constant gate, no gradient to bn1.weight).",
    ),
    constraints=(
        "the bottleneck width is max(8, c1 // reduction), as in the reference",
        "BatchNorm sees N x mip x (H + W) x 1, so batch 1 trains fine; only batch 1 with a 1x1 map (two equal "
        "values) uses the running statistics in train mode, since batch statistics would zero the branch",
    ),
    arg_help={"reduction": "reduction ratio of the shared 1x1 bottleneck (width max(8, c1 // reduction))"},
    ranges={"reduction": {"min": 1, "below_c1": True}},
)
class CoordAtt(AttentionModule):
    """Channel attention factorised into two 1-D encodings along height and width that keep positional information."""

    def __init__(self, c1: int, reduction: int = 32) -> None:
        super().__init__()
        mip = max(8, c1 // reduction)
        self.conv1 = nn.Conv2d(c1, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.conv_h = nn.Conv2d(mip, c1, 1)
        self.conv_w = nn.Conv2d(mip, c1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        # pool along W (-> N C H 1) and along H (-> N C W 1); stack on the spatial axis so one conv/BN handles both
        y = torch.cat((x.mean(3, keepdim=True), x.mean(2, keepdim=True).transpose(2, 3)), dim=2)
        y = self.conv1(y)
        if self.training and x.shape[0] == 1 and h == 1 and w == 1:
            # batch 1 with a 1x1 map: both pooled values equal, so batch statistics normalise everything to zero
            # (no gradient for bn1.weight, a constant gate); normalise with the running statistics instead
            y = F.batch_norm(y, self.bn1.running_mean, self.bn1.running_var, self.bn1.weight, self.bn1.bias, False)
        else:
            y = self.bn1(y)
        y = F.hardswish(y)
        y_h, y_w = y.split((h, w), dim=2)
        a_h = self.conv_h(y_h).sigmoid()  # N C H 1
        a_w = self.conv_w(y_w.transpose(2, 3)).sigmoid()  # N C 1 W
        return x * a_h * a_w
