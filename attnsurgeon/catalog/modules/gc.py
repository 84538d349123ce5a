"""GC: Global Context block (GCNet).

Cao, Xu, Lin, Wei, Hu. "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", ICCV Workshops 2019.
https://arxiv.org/abs/1904.11492  DOI: 10.1109/ICCVW.2019.00246
Reference: https://github.com/xvjiarui/GCNet (mmdet/ops/gcb/context_block.py, ContextBlock; the paper's default
configuration: ratio 1/16, 'att' pooling, 'channel_add' fusion).

Deviations from the reference:
- zero_init (default False): the reference zero-initialises the last conv of each transform so the block starts as
  the identity. Then conv_mask and the first transform conv/LayerNorm receive exactly zero gradient at step 0 (they
  come alive only after the first update), which fails this catalog's "every parameter trains" contract and stalls
  them under a frozen-last-layer schedule. By default the last conv keeps PyTorch's default initialisation (the
  block does not start as identity); zero_init=True restores the reference initialisation exactly.
- The transform width is max(int(c1 * ratio), 1), so small c1 still builds.
- Otherwise the reference's layers and names (conv_mask, channel_add_conv = conv, LayerNorm([planes, 1, 1]), ReLU,
  conv), mmcv kaiming_init (normal, fan-in) of conv_mask and softmax attention pooling over H*W.
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


def _transform(c1: int, planes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c1, planes, kernel_size=1),
        nn.LayerNorm([planes, 1, 1]),
        nn.ReLU(inplace=True),
        nn.Conv2d(planes, c1, kernel_size=1),
    )


@register_module(
    aliases=("GCBlock", "ContextBlock", "GlobalContext", "GCNet", "GlobalContextBlock", "GCAttention"),
    category="self-attention",
    paper="GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond",
    venue="ICCV Workshops",
    year=2019,
    link="https://arxiv.org/abs/1904.11492",
    reference="https://github.com/xvjiarui/GCNet",
    deviations=(
        "zero_init defaults to False: the reference zero-initialises the last transform conv (identity at start), "
        "which gives conv_mask and the first transform layers exactly zero gradient at initialisation; set "
        "zero_init=True for the reference initialisation.",
        "Transform width max(int(c1 * ratio), 1), so small c1 still builds.",
    ),
    constraints=("fusion must be channel_add, channel_mul or channel_add+channel_mul",),
    arg_help={
        "ratio": "width of the transform bottleneck as a fraction of c1 (planes = c1 * ratio)",
        "pooling": "context pooling: 'att' (softmax attention over positions) or 'avg' (global average)",
        "fusion": "how the context is fused: added (channel_add), multiplied as a sigmoid gate (channel_mul), or both",
        "zero_init": "zero-initialise the last transform conv so the block starts as identity (reference)",
    },
    choices={
        "pooling": ("att", "avg"),
        "fusion": ("channel_add", "channel_mul", "channel_add+channel_mul"),
    },
    ranges={"ratio": {"gt": 0, "max": 1}},
)
class GC(AttentionModule):
    """Global context: one query-independent attention map pools a context vector that a bottleneck adds per channel."""

    def __init__(
        self,
        c1: int,
        ratio: float = 0.0625,
        pooling: str = "att",
        fusion: str = "channel_add",
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in ("att", "avg"):
            raise ValueError(f"GC pooling must be 'att' or 'avg', got {pooling!r}")
        fusions = fusion.split("+")
        if not fusions or any(f not in ("channel_add", "channel_mul") for f in fusions):
            raise ValueError(f"GC fusion must be channel_add, channel_mul or both joined by '+', got {fusion!r}")
        planes = max(int(c1 * ratio), 1)
        self.pooling = pooling
        self.conv_mask = nn.Conv2d(c1, 1, kernel_size=1) if pooling == "att" else None
        self.channel_add_conv = _transform(c1, planes) if "channel_add" in fusions else None
        self.channel_mul_conv = _transform(c1, planes) if "channel_mul" in fusions else None
        if self.conv_mask is not None:
            nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")  # mmcv kaiming_init
            nn.init.zeros_(self.conv_mask.bias)
        if zero_init:
            for transform in (self.channel_add_conv, self.channel_mul_conv):
                if transform is not None:
                    nn.init.zeros_(transform[-1].weight)
                    nn.init.zeros_(transform[-1].bias)

    def _pooling_weights(self, x: torch.Tensor) -> torch.Tensor:
        assert self.conv_mask is not None
        return self.conv_mask(x).flatten(2).softmax(dim=-1)  # (N, 1, HW)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor | None:
        """The softmax weights (N x H x W, summing to 1) that pool the context from the input ``x``; None for
        ``pooling='avg'`` (a plain mean, no map)."""
        if self.conv_mask is None:
            return None
        return self._pooling_weights(x).reshape(x.shape[0], *x.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        if self.conv_mask is not None:
            attn = self._pooling_weights(x)
            context = torch.matmul(x.flatten(2), attn.transpose(1, 2)).reshape(b, c, 1, 1)
        else:
            context = x.mean(dim=(2, 3), keepdim=True)
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(context))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(context)
        return out
