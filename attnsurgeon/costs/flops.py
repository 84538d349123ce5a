"""How much a model computes: parameters, Ultralytics-compatible GFLOPs and exact FLOPs at the real input size.

FLOPs are 2 x multiply-accumulates. The exact count uses ``torch.utils.flop_counter.FlopCounterMode`` at the
dispatcher level, so matmul/einsum/bmm/SDPA inside attention are counted; PyTorch's counter has no formula for the
CPU flash-attention kernel, which is added here. Elementwise ops, softmax, normalisation and pooling are not counted
(the same convention as Ultralytics/thop for convolutions). Used by the catalog's reference costs, verification and
``profile``; imports nothing of attnsurgeon but :mod:`attnsurgeon.core.sizes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from attnsurgeon.core.sizes import Size, hw

NOT_COUNTED = (
    "elementwise ops (activations, additions, multiplications, bias adds), softmax, normalisation, pooling, "
    "resizing, indexing and data movement"
)
ULTRALYTICS = "ultralytics"
EXACT_FALLBACK = "exact at full size (Ultralytics' estimate returned 0)"
EXACT_PAIRED = "exact at full size (as the model it is compared with, whose Ultralytics estimate returned 0)"


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _sdpa_cpu_flop(query_shape: Sequence[int], key_shape: Sequence[int], value_shape: Sequence[int]) -> int:
    # q @ k^T and attn @ v, as PyTorch's own formula for the other SDPA kernels: 2 * (b*h) * (l*s*e + l*s*ev).
    *batch, length, e = query_shape
    source = key_shape[-2]
    ev = value_shape[-1]
    bh = 1
    for dim in batch:
        bh *= dim
    return 2 * bh * length * source * (e + ev)


def _custom_mapping() -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None:

        def flash_cpu(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None, **kwargs: Any) -> int:
            return _sdpa_cpu_flop(query, key, value)

        mapping[op] = flash_cpu
    return mapping


def exact_flops(model: nn.Module, inputs: torch.Tensor, per_module: bool = False) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward pass at the inputs' real size; optionally per module (FlopCounterMode's names)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    was_training = model.training
    model.eval()
    try:
        with counter, torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
    by_module: dict[str, int] = {}
    if per_module:
        for name, ops in counter.get_flop_counts().items():
            by_module[name] = int(sum(ops.values()))
    return int(counter.get_total_flops()), by_module


@dataclass
class Gflops:
    value: float
    source: str  # "ultralytics" or "exact (ultralytics estimate failed)"

    @property
    def fallback(self) -> bool:
        return self.source != ULTRALYTICS


def ultralytics_gflops(model: nn.Module, imgsz: Size = 640) -> Gflops:
    """The GFLOPs ``model.info()`` prints; never a silent 0: if Ultralytics' estimate fails, count exactly."""
    from ultralytics.utils.torch_utils import get_flops

    h, w = hw(imgsz)
    value = float(get_flops(model, [h, w]))
    if value > 0:
        return Gflops(value, ULTRALYTICS)
    return exact_gflops(model, imgsz)


def exact_gflops(model: nn.Module, imgsz: Size = 640, source: str = EXACT_FALLBACK) -> Gflops:
    """Exact GFLOPs of one image at ``imgsz`` with the model's own input channels (as ``get_flops`` reads them)."""
    h, w = hw(imgsz)
    p = next(model.parameters())
    x = torch.zeros(1, p.shape[1], h, w, device=p.device, dtype=p.dtype)
    total, _ = exact_flops(model, x)
    return Gflops(total / 1e9, source)


def comparable_gflops(base: nn.Module, new: nn.Module, imgsz: Size = 640) -> tuple[Gflops, Gflops]:
    """GFLOPs of two models by the same method, so their difference is never a mix of Ultralytics' estimate and
    the exact count: when Ultralytics' estimate fails for either, both are counted exactly."""
    pair = ultralytics_gflops(base, imgsz), ultralytics_gflops(new, imgsz)
    if pair[0].fallback == pair[1].fallback:
        return pair
    base_g, new_g = (
        g if g.fallback else exact_gflops(m, imgsz, EXACT_PAIRED) for g, m in zip(pair, (base, new), strict=True)
    )
    return base_g, new_g
