"""Per-layer costs of a deployed model (``profile --layers``): params, exact FLOPs, time and share per top-level layer,
with inserted attention layers marked and the attention inside augmented blocks counted on its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attnsurgeon.costs.flops import count_params
from attnsurgeon.costs.timing import grouped_times, layer_times
from attnsurgeon.ultralytics_bridge.augment_blocks import attended_convs


@dataclass
class LayerCost:
    index: int
    module: str
    params: int
    flops: int  # exact, per image, at the real input size
    ms: float | None
    share: float | None  # of the summed per-layer time
    attention: bool  # a catalog (inserted attention) module
    inside: dict[str, Any] | None = None  # attention inside the block (augment): module, count, params, flops, ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "module": self.module,
            "params": self.params,
            "flops": self.flops,
            "gflops": round(self.flops / 1e9, 6),
            "ms": None if self.ms is None else round(self.ms, 4),
            "share": None if self.share is None else round(self.share, 4),
            "attention": self.attention,
            "inside": self.inside,
        }


def is_attention_layer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("attnsurgeon.catalog")


def layer_costs(
    source: nn.Module, deployed: nn.Module, per_module: dict[str, int], x: torch.Tensor, runs: int
) -> list[LayerCost]:
    root = type(deployed).__name__
    times = layer_times(deployed, x, runs)
    inner = {i: attention_inside(layer) for i, layer in enumerate(deployed.model)}  # type: ignore[arg-type]
    inner = {i: found for i, found in inner.items() if found}
    inner_ms = grouped_times(deployed, x, runs, {i: [m for _, m in found] for i, found in inner.items()})
    total_ms = sum(times.values())
    layers = []
    for index, (orig, layer) in enumerate(zip(source.model, deployed.model, strict=True)):  # type: ignore[arg-type]
        ms = times.get(index)
        inside = None
        if index in inner:
            names = [name for name, _ in inner[index]]
            modules = [m for _, m in attention_inside(orig)]
            inside = {
                "module": type(modules[0]).__name__,
                "count": len(modules),
                "params": sum(count_params(m) for m in modules),
                "flops": sum(per_module.get(f"{root}.model.{index}.{name}", 0) for name in names),
                "ms": inner_ms.get(index),
            }
        layers.append(
            LayerCost(
                index=index,
                module=type(layer).__name__,
                params=count_params(orig),
                flops=per_module.get(f"{root}.model.{index}", 0),
                ms=ms,
                share=ms / total_ms if ms is not None and total_ms > 0 else None,
                attention=is_attention_layer(layer),
                inside=inside,
            )
        )
    return layers


def attention_inside(layer: nn.Module) -> list[tuple[str, nn.Module]]:
    """The attention modules ``augment`` placed inside a block, with their names within the layer."""
    return [(f"{name}.attn", conv.attn) for name, conv in attended_convs(layer)]
