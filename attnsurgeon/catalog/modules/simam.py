"""SimAM: a parameter-free attention module.

Yang, Zhang, Li, Xie. "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks",
ICML 2021 (PMLR 139). https://proceedings.mlr.press/v139/yang21o.html
Reference: https://github.com/ZjjConan/SimAM (networks/attentions/simam_module.py).

Deviations from the reference:
- The variance denominator n = H*W - 1 is clamped to at least 1: on a 1x1 map the reference divides 0 by 0 and
  returns NaN. With the clamp a 1x1 map gives the energy term 0.5 (sigmoid(0.5) gate), the value the formula takes
  when every neuron equals the mean.
"""

from __future__ import annotations

import torch

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("SimAMAttention", "simam_module", "SimAMBlock", "SimAM_Attention"),
    category="channel+spatial",
    paper="SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks",
    venue="ICML",
    year=2021,
    link="https://proceedings.mlr.press/v139/yang21o.html",
    reference="https://github.com/ZjjConan/SimAM",
    deviations=(
        "The variance denominator H*W - 1 is clamped to >= 1, so a 1x1 map gives a finite gate instead of the "
        "reference's 0/0 = NaN.",
    ),
    constraints=("parameter-free: nothing to train; works for any C, H, W",),
    arg_help={"e_lambda": "regulariser lambda added to the per-channel variance in the energy function"},
    ranges={"e_lambda": {"gt": 0, "max": 1}},
)
class SimAM(AttentionModule):
    """Parameter-free 3-D attention: each neuron is weighted by the inverse of its minimal energy (distinctiveness)."""

    def __init__(self, c1: int, e_lambda: float = 1e-4) -> None:
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        d = (x - x.mean(dim=(2, 3), keepdim=True)).square()
        # The reference's unbiased denominator H*W - 1, clamped for 1x1 maps; a tensor op, so a traced export keeps
        # it symbolic for dynamic H and W instead of baking in the trace-time size.
        n = (d.new_ones(()) * (h * w - 1)).clamp_min(1)
        variance = d.sum(dim=(2, 3), keepdim=True) / n
        scale = 0.25 / (variance + self.e_lambda)  # per channel: multiply the map instead of dividing it
        return x * torch.sigmoid(d * scale + 0.5)  # 1 / e_t* = (t - mu)^2 / (4 (sigma^2 + lambda)) + 1/2
