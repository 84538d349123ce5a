"""Input sizes: parsing ``--imgsz``, checking it against a model's stride, and the sizes the checks run at.

One definition of each rule for every command (insert, profile, the checks). Pure: no torch, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attnsurgeon.errors import UsageError

DEFAULT_IMGSZ = 640  # Ultralytics' training and validation size; every command's --imgsz default

Size = int | Sequence[int]
MIN_STRIDE = 32  # Ultralytics' check_imgsz: sizes are multiples of max(stride, 32)
TRAIN_STEP_MAX = 320


def hw(imgsz: Size) -> tuple[int, int]:
    """An int or (h, w) sequence -> (h, w)."""
    if isinstance(imgsz, int):
        return imgsz, imgsz
    h, w = (list(imgsz) * 2)[:2] if len(imgsz) == 1 else list(imgsz)[:2]
    return int(h), int(w)


def parse_imgsz(imgsz: str | Size) -> tuple[int, int]:
    """``640``, ``"640"``, ``"480,640"`` or ``(480, 640)`` -> (h, w); :class:`UsageError` for anything else."""
    if isinstance(imgsz, str):
        parts = [p.strip() for p in re.split(r"[,x ]+", imgsz.strip()) if p.strip()]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
    elif isinstance(imgsz, bool):
        values = []
    elif isinstance(imgsz, int):
        values = [imgsz]
    else:
        values = [int(v) for v in imgsz] if all(isinstance(v, int) and not isinstance(v, bool) for v in imgsz) else []
    if len(values) not in (1, 2) or min(values) < 1:
        raise UsageError(f"--imgsz {imgsz}: give one size (640) or height,width (480,640) in pixels")
    return hw(values)


def check_square(imgsz: int) -> None:
    """A square ``--imgsz`` before any model is built: a positive multiple of the smallest stride."""
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < MIN_STRIDE or imgsz % MIN_STRIDE:
        raise UsageError(f"--imgsz {imgsz} must be a positive multiple of {MIN_STRIDE} (e.g. 640)")


def check_imgsz(size: Size, stride: int) -> None:
    """Every side a multiple of the model's stride, or a one-line error with the nearest sizes that are."""
    size = hw(size)
    if any(s % stride for s in size):
        sides = size if size[0] != size[1] else size[:1]
        text = ",".join(map(str, sides))
        hint = ",".join(str(max(stride, round(s / stride) * stride)) for s in sides)
        raise UsageError(f"--imgsz {text} is not a multiple of the model stride {stride}; use e.g. {hint}")


def rect_sizes(imgsz: int, stride: int) -> list[tuple[int, int]]:
    """Two rectangular sizes (h x w and w x h) whose deepest feature map has an odd side, like rect validation.

    For imgsz 640 and stride 32: 480x640 and 640x480 (P5 is 15x20 and 20x15).
    """
    side = max(stride, (imgsz * 3 // 4) // stride * stride)
    if (side // stride) % 2 == 0:
        side = side - stride if side > stride else side + stride
    return [(side, imgsz), (imgsz, side)]


def forward_sizes(imgsz: int, stride: int) -> list[tuple[int, int]]:
    """The sizes every verification runs a forward pass at: the square size and the two rectangular ones."""
    return [(imgsz, imgsz), *rect_sizes(imgsz, stride)]


def train_size(imgsz: int, stride: int) -> int:
    """The square size of the verification's training step.

    One step proves the loss and gradients work; a smaller image keeps verification quick. The full and rectangular
    sizes are covered by the forward checks.
    """
    return max(2 * stride, min(imgsz, TRAIN_STEP_MAX) // stride * stride)
