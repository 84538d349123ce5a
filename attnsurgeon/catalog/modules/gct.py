"""Gated Channel Transformation (GCT).

Yang, Zhu, Wu, Yang. "Gated Channel Transformation for Visual Recognition", CVPR 2020. https://arxiv.org/abs/1909.11519
Reference: https://github.com/z-x-yang/GCT (``PyTorch/GCT.py``, class ``GCT``), by the paper's authors.

Per channel: a global context embedding s_c = alpha_c * ||x_c||_2 (l2 mode; l1 mode sums |x_c|), channel
normalisation s_c * sqrt(C) / ||s||_2 (written as gamma_c / sqrt(mean_c s^2 + eps)), and a gate
1 + tanh(gamma_c * s_hat_c + beta_c) that multiplies the input. 3 * C parameters, no reduction.

Deviation (initialisation): the reference starts gamma = 0 and beta = 0, so the gate is exactly 1 (identity) at
init, as the paper intends, but then alpha reaches the output only through gamma and receives an exactly zero
gradient on the first step. This module initialises gamma to ``gamma_init`` (default 0.01): the gate starts with
mean |gate - 1| <= 1% and alpha trains from the first step. ``gamma_init=0`` reproduces the reference exactly.
The reference calls an undefined ``sys.exit`` for an unknown mode; this module raises ValueError at construction.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(
    aliases=("GatedChannelTransformation", "GCTLayer", "GCTBlock"),
    category="channel",
    paper="Gated Channel Transformation for Visual Recognition",
    venue="CVPR",
    year=2020,
    link="https://arxiv.org/abs/1909.11519",
    reference="https://github.com/z-x-yang/GCT",
    deviations=(
        "gamma starts at gamma_init = 0.01 instead of 0: with gamma = 0 the reference's alpha gets an exactly zero "
        "gradient at init; the gate still starts with mean |gate - 1| <= 1%. gamma_init=0 reproduces the reference.",
        "An unknown mode raises ValueError at construction (the reference calls sys.exit, which it never imports).",
    ),
    arg_help={
        "epsilon": "small constant inside the square roots / denominators",
        "mode": "embedding norm: 'l2' (default) or 'l1'",
        "after_relu": "l1 mode only: the input is non-negative, so skip the absolute value",
        "gamma_init": "initial value of the gating weight gamma (reference: 0, which freezes alpha at init)",
    },
    choices={"mode": ("l2", "l1")},
    ranges={"epsilon": {"gt": 0, "max": 1}},
)
class GCT(AttentionModule):
    """Channel gate 1 + tanh(gamma * normalised(alpha * ||x_c||) + beta) from a normalised global context embedding."""

    def __init__(
        self, c1: int, epsilon: float = 1e-5, mode: str = "l2", after_relu: bool = False, gamma_init: float = 0.01
    ) -> None:
        super().__init__()
        if mode not in ("l2", "l1"):
            raise ValueError(f"mode must be 'l2' or 'l1', got {mode!r}")
        self.alpha = nn.Parameter(torch.ones(1, c1, 1, 1))
        self.gamma = nn.Parameter(torch.full((1, c1, 1, 1), float(gamma_init)))
        self.beta = nn.Parameter(torch.zeros(1, c1, 1, 1))
        self.epsilon = epsilon
        self.mode = mode
        self.after_relu = after_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "l2":
            embedding = (x.square().sum((2, 3), keepdim=True) + self.epsilon).sqrt() * self.alpha
            norm = self.gamma * torch.rsqrt(embedding.square().mean(1, keepdim=True) + self.epsilon)
        else:
            magnitude = x if self.after_relu else x.abs()
            embedding = magnitude.sum((2, 3), keepdim=True) * self.alpha
            norm = self.gamma / (embedding.abs().mean(1, keepdim=True) + self.epsilon)
        return x * (1.0 + torch.tanh(embedding * norm + self.beta))
