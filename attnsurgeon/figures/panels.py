"""The arrays behind ``cam``'s pictures: heat-map overlays, side-by-side rows, the grid, and PNG bytes (PIL)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

GAP = 4  # white pixels between panels
ALPHA = 0.5


def _ramp(levels: int = 1024) -> np.ndarray:
    stops = np.array([[0, 0, 128], [0, 128, 255], [0, 220, 120], [255, 230, 0], [220, 0, 0]], dtype=np.float32)
    pos = np.linspace(0, len(stops) - 1, levels)
    lo = np.clip(np.floor(pos).astype(int), 0, len(stops) - 2)
    frac = (pos - lo)[:, None]
    return (stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.uint8)


RAMP = _ramp()


def colorize(heat: np.ndarray) -> np.ndarray:
    """H x W in 0..1 -> H x W x 3 uint8, a blue-green-yellow-red ramp in 1024 steps (a table look-up; no
    matplotlib needed)."""
    return RAMP[np.rint(np.clip(np.nan_to_num(heat), 0, 1) * (len(RAMP) - 1)).astype(np.intp)]


def overlay(image: np.ndarray, heat: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
    """The image under its heat map, with the boxes (x1 y1 x2 y2 conf cls) drawn."""
    from PIL import Image, ImageDraw

    mixed = (image.astype(np.float32) * (1 - ALPHA) + colorize(heat).astype(np.float32) * ALPHA).astype(np.uint8)
    if boxes is None or not len(boxes):
        return mixed
    picture = Image.fromarray(mixed)
    draw = ImageDraw.Draw(picture)
    for x1, y1, x2, y2, score, cls in np.asarray(boxes, dtype=np.float32).tolist():
        if x2 > x1 and y2 > y1:
            draw.rectangle([x1, y1, x2, y2], outline=(255, 255, 255), width=2)
        draw.text((x1 + 2, y1 + 1), f"{int(cls)} {score:.2f}", fill=(255, 255, 255))
    return np.asarray(picture)


def side_by_side(*panels_and_titles: object) -> np.ndarray:
    """Panels of one size left to right with GAP white pixels between, each titled in its top left corner."""
    *panels, titles = panels_and_titles
    from PIL import Image, ImageDraw

    h, w = panels[0].shape[:2]
    row = np.full((h, len(panels) * w + (len(panels) - 1) * GAP, 3), 255, dtype=np.uint8)
    for k, (panel, title) in enumerate(zip(panels, titles, strict=True)):
        picture = Image.fromarray(np.ascontiguousarray(panel))
        ImageDraw.Draw(picture).text((3, 2), str(title), fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
        row[:, k * (w + GAP) : k * (w + GAP) + w] = np.asarray(picture)
    return row


def grid(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows of the same width top to bottom, GAP white pixels between."""
    h, w = rows[0].shape[:2]
    out = np.full((len(rows) * h + (len(rows) - 1) * GAP, w, 3), 255, dtype=np.uint8)
    for k, row in enumerate(rows):
        out[k * (h + GAP) : k * (h + GAP) + h] = row
    return out


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)  # 6 (the default): 4x the time
    return buffer.getvalue()
