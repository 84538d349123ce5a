"""Frequency channel attention (FcaNet, multi-spectral channel attention).

Qin, Zhang, Wu, Li. "FcaNet: Frequency Channel Attention Networks", ICCV 2021. https://arxiv.org/abs/2012.11879
Reference: https://github.com/cfzd/FcaNet (``model/layer.py``, ``MultiSpectralAttentionLayer`` and
``MultiSpectralDCTLayer``), by the paper's authors.

SE's global average pooling is the lowest 2D-DCT frequency; FcaNet splits the channels into ``num_freq`` groups and
squeezes each group with a different fixed 2D-DCT basis function on a dct_size x dct_size grid (the 16 "top"
frequencies of the paper's 7x7 ablation, scaled by dct_size // 7 as the reference does), then applies SE's bias-free
c -> c/r -> c excitation and a sigmoid. The DCT filters are fixed buffers, so the parameters are SE's: 2 * c * c/r.

The reference adaptive-average-pools the input to dct_size x dct_size when sizes differ. Pooling and the DCT
weighting are both linear, so this module folds them: the 16 filters are mapped back onto the H x W grid through the
adaptive-pooling matrices (``adaptive_pool_matrix``) and applied with one matrix product. The result equals
"adaptive_avg_pool2d then DCT" for every H, W (1x1 included; at H = W = dct_size the matrices are identities), and
it exports to ONNX where adaptive pooling from non-divisible sizes does not.

Deviations:
- the reference asserts c1 % 16 == 0; here num_freq falls back to the largest divisor of c1 that is <= the number of
  frequencies of freq_sel_method (the first num_freq of its list), so any c1 builds;
- the reference's ResNet picks dct_size per stage (56/28/14/7 for 64..512 planes); a YOLO layer does not know its
  resolution at build time, so dct_size is a hyper-parameter defaulting to 7 (the reference's 512-plane stage and
  its detection note: other sizes are adaptively pooled);
- the bottleneck width is max(c1 // reduction, 1) (the excitation is bias-free nn.Linear, as in the reference);
- the DCT filters are non-persistent buffers (recomputed at construction, absent from the state dict), stored per
  frequency rather than per channel.
"""

from __future__ import annotations

import math

import torch

from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.modules.building_blocks import adaptive_pool_matrix, excitation, largest_divisor_at_most
from attnsurgeon.catalog.registry import register_module

# Frequency (u, v) indices on a 7x7 grid, ranked by the paper's single-frequency ablation (reference get_freq_indices).
_FREQS_X = {
    "top": (0, 0, 6, 0, 0, 1, 1, 4, 5, 1, 3, 0, 0, 0, 3, 2, 4, 6, 3, 5, 5, 2, 6, 5, 5, 3, 3, 4, 2, 2, 6, 1),
    "low": (0, 0, 1, 1, 0, 2, 2, 1, 2, 0, 3, 4, 0, 1, 3, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4),
    "bot": (6, 1, 3, 3, 2, 4, 1, 2, 4, 4, 5, 1, 4, 6, 2, 5, 6, 1, 6, 2, 2, 4, 3, 3, 5, 5, 6, 2, 5, 5, 3, 6),
}
_FREQS_Y = {
    "top": (0, 1, 0, 5, 2, 0, 2, 0, 0, 6, 0, 4, 6, 3, 5, 2, 6, 3, 3, 3, 5, 1, 1, 2, 4, 2, 1, 1, 3, 0, 5, 3),
    "low": (0, 1, 0, 1, 2, 0, 1, 2, 2, 3, 0, 0, 4, 3, 1, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3, 2, 1, 0, 6, 5, 4, 3),
    "bot": (6, 4, 4, 6, 6, 3, 1, 4, 4, 5, 6, 5, 2, 2, 5, 1, 4, 3, 5, 0, 3, 1, 1, 2, 4, 2, 1, 1, 5, 3, 3, 3),
}
_METHODS = tuple(f"{kind}{n}" for kind in ("top", "low", "bot") for n in (1, 2, 4, 8, 16, 32))


def _dct_basis(size: int, freqs: torch.Tensor) -> torch.Tensor:
    """Orthonormal 1D DCT-II basis vectors: (len(freqs), size), cos(pi * u * (t + 0.5) / size) / sqrt(size) * c_u."""
    t = torch.arange(size, dtype=torch.float64)
    basis = torch.cos(math.pi * freqs[:, None].double() * (t[None, :] + 0.5) / size) / math.sqrt(size)
    return torch.where(freqs[:, None] == 0, basis, basis * math.sqrt(2.0))


@register_module(
    aliases=("FCA", "FcaLayer", "MultiSpectralAttention", "MultiSpectralAttentionLayer"),
    category="channel",
    paper="FcaNet: Frequency Channel Attention Networks",
    venue="ICCV",
    year=2021,
    link="https://arxiv.org/abs/2012.11879",
    reference="https://github.com/cfzd/FcaNet",
    deviations=(
        "The reference asserts that c1 is divisible by the number of frequencies; here the number of frequencies "
        "falls back to the largest divisor of c1 not above it (first ones of the selected list).",
        "dct_size is a hyper-parameter (default 7) instead of the reference ResNet's per-stage 56/28/14/7; other "
        "input sizes are adaptively average-pooled to it, as in the reference.",
        "Adaptive pooling and the DCT are folded into one filter per frequency on the H x W grid (same values; "
        "exports to ONNX for any size, where adaptive pooling from non-divisible sizes does not).",
        "The bottleneck width is max(c1 // reduction, 1), so channel counts below the reduction ratio still build.",
    ),
    constraints=(
        "c1 must be divisible by the number of frequencies (16 for top16); otherwise the largest divisor of c1 "
        "below it is used",
    ),
    arg_help={
        "reduction": "channel reduction ratio r of the excitation bottleneck (c1 -> c1/r -> c1)",
        "freq_sel_method": "frequency selection: top/low/bot (paper ablation ranking / lowest / worst) and count",
        "dct_size": "side of the DCT grid the input is pooled to; frequencies are scaled by dct_size // 7",
    },
    choices={
        "freq_sel_method": (
            "top1",
            "top2",
            "top4",
            "top8",
            "top16",
            "top32",
            "low1",
            "low2",
            "low4",
            "low8",
            "low16",
            "low32",
            "bot1",
            "bot2",
            "bot4",
            "bot8",
            "bot16",
            "bot32",
        )
    },
    ranges={"reduction": {"min": 1, "below_c1": True}, "dct_size": {"min": 1}},
)
class FcaNet(AttentionModule):
    """SE with a multi-spectral squeeze: channel groups pooled by different fixed 2D-DCT basis functions."""

    def __init__(self, c1: int, reduction: int = 16, freq_sel_method: str = "top16", dct_size: int = 7) -> None:
        super().__init__()
        if freq_sel_method not in _METHODS:
            raise ValueError(f"freq_sel_method must be one of {_METHODS}, got {freq_sel_method!r}")
        num_freq = largest_divisor_at_most(c1, int(freq_sel_method[3:]))
        scale = max(dct_size // 7, 1)
        kind = freq_sel_method[:3]
        u = torch.tensor(_FREQS_X[kind][:num_freq]) * scale
        v = torch.tensor(_FREQS_Y[kind][:num_freq]) * scale
        self.num_freq = num_freq
        self.dct_size = dct_size
        # (num_freq, dct, 1) and (num_freq, 1, dct): the 2D filter of group g is their outer product. Buffers, not
        # parameters (the reference's "fixed DCT init"); one per frequency, not per channel, to keep them small.
        self.register_buffer("dct_rows", _dct_basis(dct_size, u).float()[:, :, None], persistent=False)
        self.register_buffer("dct_cols", _dct_basis(dct_size, v).float()[:, None, :], persistent=False)
        self.fc = excitation(c1, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # Pooling rows: (dct, H) and (dct, W). Filter on H x W: P_h^T (r c^T) P_w = (P_h^T r)(c^T P_w), per frequency.
        ph = adaptive_pool_matrix(int(h), self.dct_size, x.device, x.dtype)
        pw = adaptive_pool_matrix(int(w), self.dct_size, x.device, x.dtype)
        rows = torch.matmul(ph.transpose(0, 1), self.dct_rows.to(x.dtype))  # (F, H, 1)
        cols = torch.matmul(self.dct_cols.to(x.dtype), pw)  # (F, 1, W)
        filters = (rows * cols).reshape(self.num_freq, h * w, 1)
        # channel group g uses frequency g (contiguous blocks of c / F channels, as in the reference)
        y = torch.matmul(x.reshape(n, self.num_freq, c // self.num_freq, h * w), filters).reshape(n, c)
        return x * self.fc(y)[:, :, None, None]
