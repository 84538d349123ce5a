"""Small building blocks shared by catalog modules (imports torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple_h: int, multiple_w: int | None = None) -> tuple[torch.Tensor, int, int]:
    """Zero-pad the bottom/right of an NCHW tensor so H and W are multiples; returns (padded, pad_h, pad_w).

    Blocks and windows need divisible sizes; YOLO feature maps (e.g. 15x20 in rectangular validation) often are not.
    """
    multiple_w = multiple_h if multiple_w is None else multiple_w
    h, w = x.shape[-2:]
    pad_h = (multiple_h - h % multiple_h) % multiple_h
    pad_w = (multiple_w - w % multiple_w) % multiple_w
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x, pad_h, pad_w


def crop_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`."""
    return x[..., :h, :w]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of divisor, never dropping more than 10% (MobileNet convention)."""
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new
