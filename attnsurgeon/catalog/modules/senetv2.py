"""SENetV2: the Squeeze-aggregated-Excitation (SaE) module.

Narayanan. "SENetV2: Aggregated dense layer for channelwise and global representations", arXiv 2023.
https://arxiv.org/abs/2311.10807  Reference (the author's TensorFlow code):
https://github.com/mahendran-narayanan/SENetV2-Aggregated-dense-layer-for-channelwise-and-global-representations
(``se_v2.py``, class ``SEv2``).

SaE squeezes by global average pooling, then excites through an aggregated (ResNeXt-style, multi-branch) dense layer:
``cardinality`` parallel fully connected branches C -> C/r with ReLU, whose outputs are concatenated and mapped by one
fully connected layer (C*cardinality/r -> C) and a sigmoid to channel weights. As in the reference, the module returns
``x + x * weights`` (the scaled features added to the identity).

Deviations:
- The reference hard-codes r = 32; the YOLO ports (``SELayerV2``) and this catalog default to r = 16, as the
  paper's SE baseline does. Pass ``reduction=32`` for the reference's setting.
- The ``cardinality`` branches are computed as one fully connected layer with cardinality*C/r outputs: the same
  weights, biases and result as separate branches followed by concatenation, in one matrix product. A state dict from
  a branch-per-layer port maps by stacking the branch weights in order.
- The branch width is max(C // r, 1), so channel counts below r still build (the YOLO port asserts instead).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("SELayerV2", "SaE", "SqueezeAggregatedExcitation"),
    category="channel",
    paper="SENetV2: Aggregated dense layer for channelwise and global representations",
    venue="arXiv",
    year=2023,
    link="https://arxiv.org/abs/2311.10807",
    reference="https://github.com/mahendran-narayanan/SENetV2-Aggregated-dense-layer-for-channelwise-and-global-representations",
    deviations=(
        "Default reduction is 16 (as in the YOLO ports); the author's TensorFlow code hard-codes 32.",
        "The cardinality branches are one fully connected layer with cardinality*C/r outputs (identical math and "
        "parameter count to separate branches concatenated).",
        "Branch width is max(C // r, 1), so small channel counts still build.",
    ),
    arg_help={
        "reduction": "reduction ratio r of each branch (C -> C/r)",
        "cardinality": "number of parallel fully connected branches aggregated before the excitation layer",
        "residual": "return x + x * weights as the reference does (False: plain x * weights, as YOLO ports do)",
    },
    ranges={"reduction": {"min": 1, "below_c1": True}, "cardinality": {"min": 1}},
)
class SENetV2(AttentionModule):
    """SE whose excitation is an aggregated multi-branch dense layer; output x + x * weights as in the reference."""

    def __init__(self, c1: int, reduction: int = 16, cardinality: int = 4, residual: bool = True) -> None:
        super().__init__()
        hidden = max(c1 // reduction, 1)
        self.residual = residual
        # Biases as in the reference's Keras Dense layers.
        self.branches = nn.Linear(c1, hidden * cardinality)
        self.excite = nn.Linear(hidden * cardinality, c1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3))
        weights = self.excite(torch.relu(self.branches(s))).sigmoid()[:, :, None, None]
        return x + x * weights if self.residual else x * weights
