"""Checking and costing the variants of a sweep, with no work repeated from one variant to the next.

The base model is built, profiled (as ``attnsurgeon profile`` does) and its layer shapes recorded once. A variant
differs from the base only in its fresh layers (inserted or augmented), whose outputs have their inputs' shape (the
module contract), so every other layer sees the same shapes as in the base. Hence, per variant:

- build: the whole variant, as Ultralytics builds it (its constructor already runs the whole model at 256x256);
- params: counted on the variant; GFLOPs: Ultralytics' own ``get_flops`` on the variant;
- checks (``checks="layer"``): each fresh layer alone on feature maps of the shapes it sees in the model at the
  square and at the two rectangular sizes ``insert`` checks, its output shape, and one training step's gradients to
  every one of its parameters; ``checks="model"`` runs ``insert``'s whole-model checks instead;
- exact FLOPs: base + each fresh layer counted alone (fused, at its real input size) - the layers it replaced;
- latency (``latency="delta"``): base median + each fresh layer's median timed alone on the device - the replaced
  layers' (so a variant's difference is not lost in whole-model timing noise); ``latency="full"`` times every
  variant whole, as ``profile`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attnsurgeon.catalog.gradients import gradient_faults
from attnsurgeon.checks import verify
from attnsurgeon.core import sizes
from attnsurgeon.costs import flops as flops_mod
from attnsurgeon.costs.timing import measure_latency
from attnsurgeon.errors import first_line
from attnsurgeon.ops import profile
from attnsurgeon.ultralytics_bridge import ultra
from attnsurgeon.ultralytics_bridge.wrappers import with_gates_opened

LAYER_WARMUP = 3
LAYER_BUDGET_S = 0.05  # timed runs of one fresh layer (at least timing.MIN_RUNS)
# Timed runs of the base when --runs is not given (profile's own default is 4 s): the base is timed once per sweep
# and every variant's latency is the base's plus its layers' differences, timed alone, so a longer base budget
# only moves every row by the same small amount.
BASE_BUDGET_S = 1.0
TRAIN_BATCH = 4


@dataclass(frozen=True)
class FreshLayer:
    """A layer of the variant not in the base: its index, the base layer whose output it reads (an insert) or the
    base layer it replaces (an augment)."""

    index: int
    reads: int | None = None
    replaces: int | None = None


@dataclass
class BaseModel:
    report: profile.ProfileReport
    model: nn.Module  # as built (unfused), CPU
    imgsz: int
    device: torch.device
    in_shapes: dict[int, tuple[int, ...]]  # single-tensor layer inputs at imgsz x imgsz
    out_shapes: dict[int, tuple[int, ...]]
    layer_costs: dict[int, tuple[int, float]] = field(default_factory=dict)  # index -> (FLOPs, ms), alone, on demand

    def row(self) -> dict[str, Any]:
        r = self.report
        return {
            "params": r.params,
            "gflops": round(r.gflops.value, 6),
            "gflops_exact": round(r.gflops_exact, 6),
            "latency_ms": round(r.latency.median, 4),
        }


def _shape_hooks(model: nn.Module) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]], list[Any]]:
    ins: dict[int, tuple[int, ...]] = {}
    outs: dict[int, tuple[int, ...]] = {}
    handles = []
    for i, layer in enumerate(model.model):  # type: ignore[arg-type]

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any, i: int = i) -> None:
            if args and isinstance(args[0], torch.Tensor):
                ins[i] = tuple(args[0].shape)
            if isinstance(output, torch.Tensor):
                outs[i] = tuple(output.shape)

        handles.append(layer.register_forward_hook(hook))
    return ins, outs, handles


def cost_base(cfg: dict[str, Any], scale: str, yaml_file: str, device: str, imgsz: int, runs: int | None) -> BaseModel:
    """Build and profile the base once (as ``profile`` does); record the shapes of its layers' inputs and outputs."""
    model = ultra.build_model(cfg, scale or None, yaml_file)
    report = profile.profile(model, device=device, imgsz=imgsz, runs=runs, budget_s=BASE_BUDGET_S)[0]
    deployed = report.deployed
    assert deployed is not None and report.inputs is not None
    ins, outs, handles = _shape_hooks(deployed)
    try:
        with torch.inference_mode():
            deployed(report.inputs[:1])
    finally:
        for h in handles:
            h.remove()
    return BaseModel(report, model, imgsz, report.inputs.device, ins, outs)


# --------------------------------------------------------------------------------------------------------------------
# Checks of one fresh layer on its own


def _scaled(shape: tuple[int, ...], size: tuple[int, int], imgsz: int) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, c, h * size[0] // imgsz, w * size[1] // imgsz)


def _input_shape(base: BaseModel, fresh: FreshLayer) -> tuple[int, ...] | None:
    if fresh.reads is not None:
        return base.out_shapes.get(fresh.reads)
    if fresh.replaces is not None:
        return base.in_shapes.get(fresh.replaces)
    return None


def _output_shape(base: BaseModel, fresh: FreshLayer) -> tuple[int, ...] | None:
    """What the layer must return: its input's shape (an inserted layer), or the replaced block's output shape."""
    return base.out_shapes.get(fresh.replaces) if fresh.replaces is not None else _input_shape(base, fresh)


def _forward_check(
    layer: nn.Module, shape: tuple[int, ...], expected: tuple[int, ...], name: str, where: str
) -> verify.Check:
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    layer.eval()
    try:
        with torch.inference_mode():
            y = layer(x)
    except Exception as exc:
        return verify.Check(name, False, f"{where} failed on a {'x'.join(map(str, shape))} feature map: "
                            f"{first_line(exc)}")  # fmt: skip
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(expected):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        return verify.Check(name, False, f"{where} returns {got} for input {tuple(shape)}; the model needs {expected}")
    if not torch.isfinite(y).all():
        return verify.Check(name, False, f"{where} output contains NaN or Inf")
    return verify.Check(name, True, "")


@with_gates_opened  # IdentityInit: a closed gate would zero the inner gradients
def _train_check(layer: nn.Module, shape: tuple[int, ...], where: str) -> verify.Check:
    g = torch.Generator().manual_seed(0)
    # Four samples of signed features with per-channel offsets, as real feature maps have: a small bottleneck (SE on
    # 64 channels has 4 hidden units) then has a live ReLU for some sample; positive noise could leave all 4 dead.
    x = torch.randn(TRAIN_BATCH, *shape[1:], generator=g) + 2 * torch.randn(TRAIN_BATCH, shape[1], 1, 1, generator=g)
    x.requires_grad_(True)  # a layer with no parameters still has a graph, and its input must get a gradient
    layer.train()
    for p in layer.parameters():
        p.grad = None
    try:
        y = layer(x)
        (y * torch.randn(y.shape, generator=g)).sum().backward()
    except Exception as exc:
        return verify.Check("train step", False, f"{where} failed in training: {first_line(exc)}")
    faults = gradient_faults((pname, p.grad) for pname, p in layer.named_parameters())
    problems = [f"{where} {pname}: {what}" for what, names in faults.labelled() for pname in names]
    for p in layer.parameters():
        p.grad = None
    if gradient_faults([("input", x.grad)]):
        problems.append(f"{where}: no finite non-zero gradient reaches its input")
    layer.eval()
    if problems:
        return verify.Check("train step", False, "; ".join(problems[:3]))
    return verify.Check("train step", True, f"{where}: its parameters and input get finite non-zero gradients")


def layer_checks(base: BaseModel, model: nn.Module, fresh: Sequence[FreshLayer]) -> list[verify.Check]:
    """insert's checks, on each fresh layer alone at the shapes it sees in the model (see the module docstring)."""
    stride = ultra.model_stride(model)
    train_size = sizes.train_size(base.imgsz, stride)
    checks = []
    for f in fresh:
        shape, out = _input_shape(base, f), _output_shape(base, f)
        layer = model.model[f.index]  # type: ignore[index]
        where = f"layer {f.index} ({type(layer).__name__})"
        if shape is None or out is None or len(shape) != 4 or len(out) != 4:
            checks.append(verify.Check("forward", False, f"{where}: the layer it reads has no single feature map"))
            continue
        for size in sizes.forward_sizes(base.imgsz, stride):
            name = f"forward {size[0]}x{size[1]}"
            checks.append(_forward_check(layer, _scaled(shape, size, base.imgsz), _scaled(out, size, base.imgsz),
                                         name, where))  # fmt: skip
        checks.append(_train_check(layer, _scaled(shape, (train_size, train_size), base.imgsz), where))
    return checks


def model_checks(base: BaseModel, model: nn.Module, fresh: Sequence[FreshLayer]) -> list[verify.Check]:
    """insert's whole-model checks: forward at the square and two rectangular sizes, one training step."""
    return verify.check_new_model(model, [f.index for f in fresh], {}, base.imgsz)


# --------------------------------------------------------------------------------------------------------------------
# Costs


def _layer_flops(layer: nn.Module, x: torch.Tensor) -> int:
    return flops_mod.exact_flops(layer, x)[0]


def _layer_ms(layer: nn.Module, x: torch.Tensor) -> float:
    return measure_latency([layer], x, None, LAYER_WARMUP, LAYER_BUDGET_S, collect_garbage=False)[0].median


def _deployed(module: nn.Module, device: torch.device) -> nn.Module:
    module = module.eval().to(device)
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _base_layer(base: BaseModel, index: int) -> tuple[int, float]:
    """Exact FLOPs and alone-timed median of a base layer (the deployed one), measured once."""
    if index not in base.layer_costs:
        deployed = base.report.deployed
        assert deployed is not None
        layer = deployed.model[index]  # type: ignore[index]
        x = torch.rand(*base.in_shapes[index], device=base.device)
        base.layer_costs[index] = (_layer_flops(layer, x), _layer_ms(layer, x))
    return base.layer_costs[index]


def variant_costs(
    base: BaseModel, model: nn.Module, fresh: Sequence[FreshLayer] | None, latency: str, runs: int | None
) -> dict[str, Any]:
    """params, GFLOPs, exact GFLOPs and latency of a built (and checked) variant; its layers are fused on the way.
    ``fresh`` None (fresh layers unknown) or ``latency="full"``: measured on the whole deployed variant."""
    report = base.report
    params = flops_mod.count_params(model)
    with ultra.quiet():
        gflops = flops_mod.ultralytics_gflops(model, base.imgsz)
    if fresh is None or latency == "full":
        with ultra.quiet():
            deployed = _deployed(model.fuse(verbose=False), base.device)  # type: ignore[operator]
        flops, _ = flops_mod.exact_flops(deployed, report.inputs[:1])  # type: ignore[index]
        median = measure_latency([deployed], report.inputs, runs, None)[0].median  # type: ignore[arg-type]
    else:
        flops, median = report.flops_exact, report.latency.median
        for f in fresh:
            shape = _input_shape(base, f)
            assert shape is not None
            layer = _deployed(ultra.fuse_layer(model.model[f.index]), base.device)  # type: ignore[index]
            x = torch.rand(*shape, device=base.device)
            flops += _layer_flops(layer, x)
            median += _layer_ms(layer, x)
            if f.replaces is not None:
                old_flops, old_ms = _base_layer(base, f.replaces)
                flops -= old_flops
                median -= old_ms
    return {
        "params": params,
        "gflops": round(gflops.value, 6),
        "gflops_exact": round(flops / 1e9, 6),
        "latency_ms": round(median, 4),
    }
