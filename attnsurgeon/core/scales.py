"""A model YAML's ``scales:`` mapping read as Ultralytics' ``parse_model`` reads it: each scale's row
``[depth, width, max_channels]``, the legacy ``depth_multiple``/``width_multiple`` keys where there is no mapping.
The one reader of that row (channels, repeats, the diagnosis, the figures all call it). No torch, no printing.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from attnsurgeon.errors import ModelFileError


class ScaleRow(NamedTuple):
    depth: float  # repeats gain
    width: float  # channels gain
    max_channels: float  # channels cap (inf without a ``scales`` mapping)


def scale_names(data: dict[str, Any]) -> list[str]:
    """The scales a YAML offers, in its order (``[]`` without a ``scales`` mapping)."""
    scales = data.get("scales")
    return [str(k) for k in scales] if isinstance(scales, dict) else []


def builds_at(offered: list[str], named: str = "", asked: str | None = None) -> str:
    """The scale a model is built at: ``asked`` where the file offers it, else the one its name carries (``named``),
    else the first it offers, as ``parse_model`` falls back to; '' for a file with no scales."""
    if asked and asked in offered:
        return asked
    return named if named in offered else (offered[0] if offered else "")


def scale_row(data: dict[str, Any], scale: str) -> ScaleRow:
    """The row ``parse_model`` builds ``data`` with at ``scale``: that scale's, the first one where the YAML lacks it
    (or ``scale`` is ''), the legacy keys (default 1.0, no cap) where there is no ``scales`` mapping."""
    scales = data.get("scales")
    if not isinstance(scales, dict) or not scales:
        return ScaleRow(float(data.get("depth_multiple", 1.0)), float(data.get("width_multiple", 1.0)), math.inf)
    name = scale if scale in scales else next(iter(scales))
    row = scales[name]
    try:
        depth, width, max_channels = (float(x) for x in row)
    except (TypeError, ValueError):
        raise ModelFileError(
            f"scale {name!r} is {row!r}; a scale is [depth, width, max_channels], three numbers"
        ) from None
    return ScaleRow(depth, width, max_channels)
