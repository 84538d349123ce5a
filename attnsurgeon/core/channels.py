"""Output channels of every layer, computed from the YAML alone the way Ultralytics' ``parse_model`` computes them.

Pure (no torch): ``show --no-build``, ``insert --no-verify`` and ``adopt`` need the input channels of an attention
row without building the model. Two views: *as written* (width 1, no channel cap: the numbers a person wrote in
the file, which forked YAMLs copy into attention rows) and *at a scale* (width and ``max_channels`` applied, what
the layer really gets). ``None`` where the YAML alone does not tell (a module this table does not know).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from attnsurgeon.core.graph import Graph
from attnsurgeon.core.scales import scale_row

# parse_model's base_modules: args[0] is the output channel count, scaled by width and capped by max_channels.
BASE_MODULES = frozenset(
    {
        "Classify", "Conv", "ConvTranspose", "GhostConv", "Bottleneck", "GhostBottleneck", "SPP", "SPPF", "C2fPSA",
        "C2PSA", "DWConv", "Focus", "BottleneckCSP", "C1", "C2", "C2f", "C3k2", "RepNCSPELAN4", "ELAN1", "ADown",
        "AConv", "SPPELAN", "C2fAttn", "C3", "C3TR", "C3Ghost", "nn.ConvTranspose2d", "DWConvTranspose2d", "C3x",
        "RepC3", "PSA", "SCDown", "C2fCIB", "A2C2f",
    }
)  # fmt: skip
_FIRST_ARG = frozenset({"TorchVision", "Index"})  # c2 = args[0], not scaled
_NO_FEATURE_MAP = frozenset({"CBLinear"})  # a tuple of tensors: no single channel count


def make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


def scale_factors(data: dict[str, Any], scale: str) -> tuple[float, float]:
    """(width, max_channels) of a YAML at ``scale`` (:func:`scales.scale_row`)."""
    row = scale_row(data, scale)
    return row.width, row.max_channels


def layer_channels(
    graph: Graph, width: float = 1.0, max_channels: float = math.inf, input_channels: int = 3
) -> list[int | None]:
    """Output channels of each row (width 1 and no cap: the channel counts as written)."""
    out: list[int | None] = []
    for i, row in enumerate(graph.rows):
        refs = graph.absolute(i)
        ins = [input_channels if t < 0 else out[t] for t in refs]
        out.append(_row_channels(row.module, list(row.args), ins, width, max_channels))
    return out


def _row_channels(module: str, args: Sequence[Any], ins: list[int | None], width: float, cap: float) -> int | None:
    first = args[0] if args else None
    number = isinstance(first, int) and not isinstance(first, bool)
    if module in BASE_MODULES:
        if not number:
            return None  # e.g. Classify's "nc": not a feature map anyone attends over
        return first if module == "Classify" else make_divisible(min(first, cap) * width, 8)
    if module in _FIRST_ARG:
        return first if number else None
    if module == "Concat":
        return sum(ins) if all(c is not None for c in ins) else None  # type: ignore[arg-type]
    if module == "CBFuse":
        return ins[-1]
    if module in ("HGStem", "HGBlock"):
        second = args[1] if len(args) > 1 else None
        return second if isinstance(second, int) else None
    if module == "ResNetLayer" and len(args) > 3:
        return args[1] if args[3] else args[1] * 4
    if module in _NO_FEATURE_MAP or len(ins) != 1:
        return None
    return ins[0]  # every other layer keeps its input's channels (attention, Upsample, BatchNorm, AIFI, ...)
