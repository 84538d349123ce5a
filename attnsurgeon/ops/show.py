"""``attnsurgeon show`` / ``attnsurgeon.show``: a model's layer table (one :class:`LayerInfo` per row: references,
and built at a scale, channels, stride, parameters) with the file's diagnosis. Reads a model, edits nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsurgeon.core import yolo_repos
from attnsurgeon.core.augment_graph import augment_info
from attnsurgeon.core.report import absolute
from attnsurgeon.core.sizes import DEFAULT_IMGSZ
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import NeedsAdoptionError
from attnsurgeon.ops import loading
from attnsurgeon.sources import recorded


@dataclass
class LayerInfo:
    index: int
    section: str
    from_: Any
    absolute: list[int | str]
    repeats: int
    module: str
    args: list[Any]
    out_channels: int | None
    stride: int | None
    params: int | None
    repeats_at_scale: int | None = None  # as Ultralytics builds the row at the chosen scale (depth multiple applied)
    augmented: dict[str, Any] | None = None  # an Augment row (graph.augment_info): block, module, args, where

    @property
    def label(self) -> str:
        """The module as ``show`` prints it: ``◆ C3k2+EMA`` for a block with attention inside."""
        return f"◆ {self.augmented['block']}+{self.augmented['module']}" if self.augmented else self.module

    @property
    def level(self) -> str:
        if not self.stride:
            return "-"
        p = int(math.log2(self.stride)) if self.stride & (self.stride - 1) == 0 else None
        return f"P{p}/{self.stride}" if p is not None else f"/{self.stride}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "section": self.section,
            "from": self.from_,
            "from_absolute": self.absolute,
            "repeats": self.repeats,
            "repeats_at_scale": self.repeats_at_scale,
            "module": self.module,
            "args": self.args,
            "out_channels": self.out_channels,
            "stride": self.stride,
            "level": self.level if self.stride else None,
            "params": self.params,
            "augmented": self.augmented,
        }


def show(
    model: str | Path, scale: str | None = None, imgsz: int = DEFAULT_IMGSZ, build: bool = True
) -> tuple[model_doc.ModelDoc, str, list[LayerInfo], list[str]]:
    """One row per layer: references, and (built at ``scale``) channels, stride, params; warnings: the diagnosis."""
    doc = recorded.with_recorded(model_doc.load(model))
    scales, warnings = model_doc.resolve_scales(doc, scale if scale != "all" else None)
    chosen = scales[0]
    warnings += loading.diagnosis(doc, chosen)
    unknown = loading.unknown_line(doc)  # a fork's modules: one line with `adopt`, never a plugin-file hint alone
    if unknown and build:
        raise NeedsAdoptionError(unknown)
    warnings += [unknown] * bool(unknown)
    shapes: dict[int, tuple[int, ...] | None] = {}
    params: dict[int, int] = {}
    if build:
        shapes, params = _layer_shapes(doc, chosen, imgsz)
    from attnsurgeon.ultralytics_bridge.ultra import depth_gain, scaled_repeats

    depth = depth_gain(doc.data, chosen)
    rows = []
    for i, row in enumerate(doc.graph.rows):
        shape = shapes.get(i)
        rows.append(
            LayerInfo(
                index=i,
                section=row.section,
                from_=row.from_,
                absolute=absolute(doc.graph, i),
                repeats=row.repeats,
                module=row.module,
                args=list(row.args),
                out_channels=shape[1] if shape and len(shape) == 4 else None,
                stride=imgsz // shape[2] if shape and len(shape) == 4 and shape[2] else None,
                params=params.get(i),
                repeats_at_scale=scaled_repeats(row.repeats, depth),
                augmented=augment_info(row),
            )
        )
    return doc, chosen, rows, warnings


def _layer_shapes(
    doc: model_doc.ModelDoc, scale: str, imgsz: int
) -> tuple[dict[int, tuple[int, ...] | None], dict[int, int]]:
    import torch

    from attnsurgeon.ultralytics_bridge import ultra

    model = ultra.build_model(yolo_repos.buildable(doc), scale or None, f"{doc.stem}.yaml").eval()
    shapes: dict[int, tuple[int, ...] | None] = {}
    handles = []
    for index, layer in enumerate(model.model):

        def hook(module: Any, inputs: Any, output: Any, index: int = index) -> None:
            shapes[index] = tuple(output.shape) if isinstance(output, torch.Tensor) else None

        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(torch.zeros(1, ultra.input_channels(model), imgsz, imgsz))
    finally:
        for h in handles:
            h.remove()
    params = {i: sum(p.numel() for p in layer.parameters()) for i, layer in enumerate(model.model)}
    return shapes, params
