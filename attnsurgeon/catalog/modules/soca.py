"""Second-Order Channel Attention (SOCA).

Dai, Cai, Zhang, Xia, Zhang. "Second-order Attention Network for Single Image Super-Resolution", CVPR 2019.
https://openaccess.thecvf.com/content_CVPR_2019/html/Dai_Second-Order_Attention_Network_for_Single_Image_Super-Resolution_CVPR_2019_paper.html
Reference: https://github.com/daitao/SAN (``TrainCode/model/san.py``, class ``SOCA``; covariance pooling and the
matrix square root from ``TrainCode/model/MPNCOV/python/MPNCOV.py``).

SOCA replaces SE's first-order (average) descriptor by a second-order one: the C x C covariance of the features over
all positions, normalised by its matrix square root (computed by Newton-Schulz iteration after pre-normalising by the
trace, then post-compensated by sqrt(trace)); the mean of each row of that square root is the channel descriptor,
which a bias-ful bottleneck (C -> C/r -> C, ReLU, sigmoid) turns into channel weights.

Deviations:
- The reference's centre crop to at most 1000 x 1000 positions is kept, but computed per dimension; the reference
  mis-crops when exactly one side equals 1000 (its else-branch then slices with a negative start).
- Covariance and square root run in float32 (autocast off) whatever the input dtype, and the descriptor is cast back:
  Newton-Schulz in bfloat16/float16 loses the square root. The output dtype equals the input dtype.
- The trace used for pre-normalisation is clamped to at least 1e-12, so a constant map (e.g. 1 x 1) gives a zero
  descriptor instead of NaN (the reference divides by zero there).
- Plain autograd replaces the reference's hand-written backward passes (same gradients); the covariance is computed
  from centred features instead of the reference's M x M centring matrix (same value, O(C^2 M) instead of O(C M^2)
  memory).
"""

from __future__ import annotations

import torch
from torch import nn

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


def covariance_pool(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x C x C covariance over positions, with 1/M normalisation as MPN-COV's Covpool."""
    feats = x.flatten(2)
    feats = feats - feats.mean(2, keepdim=True)
    return torch.matmul(feats, feats.transpose(1, 2)) / feats.shape[2]


def newton_schulz_sqrt(a: torch.Tensor, iterations: int, eps: float = 1e-12) -> torch.Tensor:
    """Matrix square root of a batch of SPD matrices by MPN-COV's coupled Newton-Schulz iteration (matmul only).

    Pre-normalise by the trace (so the iteration converges), iterate, post-compensate by sqrt(trace). ``iterations``
    counts matrix updates as the reference does: the first step, iterations - 2 coupled steps and a final half step.
    """
    c = a.shape[-1]
    eye = torch.eye(c, dtype=a.dtype, device=a.device)
    three = 3.0 * eye
    trace = (a * eye).sum((1, 2)).clamp_min(eps)[:, None, None]
    a = a / trace
    zy = 0.5 * (three - a)
    y = torch.matmul(a, zy)
    if iterations >= 2:
        z = zy
        for _ in range(iterations - 2):
            zy = 0.5 * (three - torch.matmul(z, y))
            y, z = torch.matmul(y, zy), torch.matmul(zy, z)
        y = 0.5 * torch.matmul(y, three - torch.matmul(z, y))
    return y * trace.sqrt()


@register_module(
    aliases=("SecondOrderChannelAttention", "SOCALayer"),
    category="channel",
    paper="Second-order Attention Network for Single Image Super-Resolution",
    venue="CVPR",
    year=2019,
    link="https://openaccess.thecvf.com/content_CVPR_2019/html/Dai_Second-Order_Attention_Network_for_Single_Image_Super-Resolution_CVPR_2019_paper.html",
    reference="https://github.com/daitao/SAN",
    deviations=(
        "The centre crop to at most 1000 x 1000 is done per dimension; the reference mis-crops (negative slice "
        "start) when exactly one side is 1000.",
        "Covariance and Newton-Schulz square root run in float32 (autocast disabled) and are cast back; output dtype "
        "equals input dtype.",
        "The trace is clamped to >= 1e-12 so constant maps (1 x 1) give a zero descriptor instead of NaN.",
        "Autograd replaces the hand-written backward; covariance from centred features instead of an M x M centring "
        "matrix (same value, far less memory).",
    ),
    constraints=(
        "Cost is O(C^2 * H * W + iterations * C^3): heavy for C >= 512 on large maps",
        "Maps larger than max_size on a side use the centre max_size crop for the statistics, as in the reference",
    ),
    arg_help={
        "reduction": "reduction ratio r of the excitation bottleneck (C -> C/r -> C)",
        "iterations": "Newton-Schulz iterations of the matrix square root (reference: 5)",
        "max_size": "statistics use at most the centre max_size x max_size positions (reference: 1000)",
    },
    ranges={"reduction": {"min": 1, "below_c1": True}, "iterations": {"min": 1}, "max_size": {"min": 1, "width": True}},
)
class SOCA(AttentionModule):
    """Channel attention from the matrix square root of the feature covariance (second-order pooling)."""

    def __init__(self, c1: int, reduction: int = 8, iterations: int = 5, max_size: int = 1000) -> None:
        super().__init__()
        hidden = max(c1 // reduction, 1)
        self.iterations = iterations
        self.max_size = max_size
        self.conv_du = nn.Sequential(
            nn.Conv2d(c1, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        hh, ww = min(int(h), self.max_size), min(int(w), self.max_size)
        top, left = (int(h) - hh) // 2, (int(w) - ww) // 2
        sub = x[:, :, top : top + hh, left : left + ww]
        with torch.autocast(device_type=x.device.type, enabled=False):
            cov = covariance_pool(sub.float())
            root = newton_schulz_sqrt(cov, self.iterations)
            descriptor = root.mean(1)  # mean over rows: one value per channel
        weights = self.conv_du(descriptor.to(x.dtype).view(n, c, 1, 1))
        return x * weights
