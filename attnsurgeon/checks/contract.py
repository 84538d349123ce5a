"""The module contract: what every catalog entry, built-in or plugin, must do (imports torch).

``attnsurgeon check-module`` runs :func:`run`; the built-in catalog's tests (tests/catalog/test_catalog_contract.py and
tests/catalog/test_catalog_models.py) call the same check functions, so a plugin passes exactly what a built-in passes.
Each check returns a :class:`~attnsurgeon.checks.verify.Check`: ``ok`` True, False (``detail`` says why) or None
(skipped).
"""

from __future__ import annotations

import datetime
import importlib.util
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnsurgeon import sources
from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.catalog.gradients import gradient_faults
from attnsurgeon.catalog.probe import (  # the channels and sizes every module must keep
    CHANNELS,
    SIZES,
    batch_moved,
    second_image_changed,
)
from attnsurgeon.catalog.registry import RESERVED_ATTRIBUTES
from attnsurgeon.checks import verify
from attnsurgeon.core import graph
from attnsurgeon.core.report import Check
from attnsurgeon.core.yamlfile import model_doc, tree_edits
from attnsurgeon.errors import first_line
from attnsurgeon.sources import plugins
from attnsurgeon.sources.adapter import is_foreign
from attnsurgeon.ultralytics_bridge import ultra

BATCHES = (1, 2)
MODEL = "yolo11n.yaml"
MODEL_AFTER = (4, 6, 8)  # after the P3, P4 and P5 backbone blocks of yolo11n and yolov8n
SCALES = ("n", "s")


ARGS = "contract_args"  # ModuleSpec.extra key: the hyper-parameters check-module --args builds the module with


def with_args(spec: ModuleSpec, args: Sequence[Any]) -> ModuleSpec:
    """``spec`` checked with ``args`` (``check-module --args``) in place of its defaults."""
    return replace(spec, extra={**spec.extra, ARGS: list(args)})


def _args(spec: ModuleSpec) -> list[Any]:
    return list(spec.extra.get(ARGS, spec.defaults()))


def build(spec: ModuleSpec | str, c1: int = CHANNELS) -> nn.Module:
    """The module at ``c1`` channels with its default hyper-parameters (or ``check-module --args``), seeded."""
    spec = sources.resolve(spec) if isinstance(spec, str) else spec
    torch.manual_seed(0)
    return REGISTRY.load_class(spec.name)(c1, *spec.extra.get(ARGS, ()))


def _sample(*shape: int, dtype: torch.dtype = torch.float32, grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(*shape, generator=g).to(dtype).requires_grad_(grad)


def check_metadata(spec: ModuleSpec) -> Check:
    """Paper, venue, year and links; every hyper-parameter has a default that fits its annotation."""
    name = "metadata and defaults"
    problems = []
    if not spec.paper.strip() or not spec.venue.strip():
        problems.append("paper and venue must not be empty")
    if not (1990 < spec.year <= datetime.date.today().year + 1):
        problems.append(f"year {spec.year} is not a publication year")
    for field in ("link", "reference"):
        if not getattr(spec, field).startswith(("https://", "http://")):
            problems.append(f"{field} {getattr(spec, field)!r} is not an http(s) link")
    required = [a.name for a in spec.args if a.required]
    if required:
        problems.append(f"hyper-parameters without a default: {', '.join(required)} (a YAML row may list none)")
    else:
        try:
            spec.check_args(spec.defaults())
        except Exception as exc:
            problems.append(first_line(exc))
    try:
        runtime = getattr(REGISTRY.load_class(spec.name), "spec", None)
    except Exception as exc:
        return Check(name, False, f"import: {first_line(exc)}")
    if runtime is not None and runtime != spec:
        problems.append("the registered class's spec differs from the one read from its source")
    return Check(name, not problems, "; ".join(problems))


def check_constructor(spec: ModuleSpec) -> Check:
    """A class as its authors wrote it: the parameter bound to the input channels; hyper-parameters with defaults."""
    name = "constructor"
    if ARGS in spec.extra:
        try:
            spec.check_args(spec.extra[ARGS])
        except Exception as exc:
            return Check(name, False, first_line(exc))
    required = [a.name for a in spec.args if a.required] if ARGS not in spec.extra else []
    if required:
        return Check(name, False, f"hyper-parameters without a default: {', '.join(required)} (check it with --args)")
    bound = ", ".join(n for n in (spec.channel_arg, *spec.same_as_input) if n)  # type: ignore[attr-defined]
    if not bound:
        return Check(
            name, True, f"no channel argument: built with its own arguments at every width; {spec.signature()}"
        )
    return Check(name, True, f"{bound} = the input channels; {spec.signature()}")


def check_shape(spec: ModuleSpec, size: tuple[int, int]) -> Check:
    """Output shaped like the input, finite, at batch 1 and 2."""
    name = f"shape {size[0]}x{size[1]}"
    try:
        module = build(spec).eval()
        for batch in BATCHES:
            x = _sample(batch, CHANNELS, *size)
            change = plugins.shape_change(module, x)
            if change:
                return Check(name, False, change)
            with torch.no_grad():
                y = module(x)
            if not torch.isfinite(y).all():
                return Check(name, False, f"output has NaN or Inf at batch {batch}")
    except Exception as exc:
        return Check(name, False, first_line(exc))
    return Check(name, True, f"batch {', '.join(map(str, BATCHES))}")


def check_dtype(spec: ModuleSpec, dtype: torch.dtype, device: str = "cpu") -> Check:
    """A forward in ``dtype`` keeps the dtype and the shape and stays finite."""
    name = f"{str(dtype).removeprefix('torch.')} ({device})"
    if device == "cuda" and not torch.cuda.is_available():
        return Check(name, None, "skipped: no CUDA device here")
    try:
        module = build(spec).to(device=device, dtype=dtype).eval()
        x = _sample(2, CHANNELS, 15, 20, dtype=dtype).to(device)
        with torch.no_grad():
            y = module(x)
    except Exception as exc:
        return Check(name, False, first_line(exc))
    if y.dtype != dtype or y.shape != x.shape:
        return Check(name, False, f"returns {y.dtype} {tuple(y.shape)} for {dtype} {tuple(x.shape)}")
    if not torch.isfinite(y.float()).all():
        return Check(name, False, "output has NaN or Inf")
    return Check(name, True, "")


def check_gradients(spec: ModuleSpec) -> Check:
    """One backward reaches every parameter and the input with finite, not all-zero gradients."""
    name = "gradients"
    try:
        module = build(spec).train()
        x = _sample(2, CHANNELS, 15, 20, grad=True)
        module(x).square().mean().backward()
    except Exception as exc:
        return Check(name, False, first_line(exc))
    params = list(module.named_parameters())
    faults = gradient_faults([("input", x.grad), *((n, p.grad) for n, p in params)])
    if faults.zero:
        # A bias right before a BatchNorm (BAM's channel gate, as its authors wrote it) has an exactly-zero gradient
        # in training, where the batch mean cancels it, and a real one in eval, where the running mean does not.
        faults.zero = _zero_in_eval(module, set(faults.zero))
    problems = [f"{what}: {', '.join(names[:4])}" for what, names in faults.labelled(zero="all-zero gradient")]
    return Check(name, not problems, "; ".join(problems) or f"input and {len(params)} parameter tensors")


def _zero_in_eval(module: nn.Module, names: set[str]) -> list[str]:
    """Of ``names`` (``input`` or parameter names), those whose gradient is exactly zero in eval mode too."""
    module.eval().zero_grad(set_to_none=True)
    x = _sample(2, CHANNELS, 15, 20, grad=True)
    module(x).square().mean().backward()
    grads = {"input": x.grad, **{n: p.grad for n, p in module.named_parameters()}}
    still = gradient_faults((n, grads[n]) for n in sorted(names))
    return still.missing + still.zero


def check_determinism(spec: ModuleSpec) -> Check:
    """Two eval forwards of the same input give the same output."""
    name = "eval determinism"
    try:
        module = build(spec).eval()
        x = _sample(2, CHANNELS, 15, 20)
        with torch.no_grad():
            a, b = module(x), module(x)
    except Exception as exc:
        return Check(name, False, first_line(exc))
    same = torch.equal(a, b)
    return Check(name, same, "" if same else f"max difference {float((a - b).abs().max()):.3g}")


def check_batch_independence(spec: ModuleSpec) -> Check:
    """In eval, one image's output does not change with the other images of its batch (a softmax or a statistic over
    the batch axis would make a detector's predictions depend on what it is batched with)."""
    name = "batch independence (eval)"
    try:
        module = build(spec).eval()
        x = _sample(2, CHANNELS, 15, 20)
        with torch.no_grad():
            gap = batch_moved(module(x), module(second_image_changed(x)))
    except Exception as exc:
        return Check(name, False, first_line(exc))
    return Check(name, not gap, f"image 0's output moved by {gap:.3g} when image 1 changed" if gap else "")


def check_reserved_names(spec: ModuleSpec) -> Check:
    """parse_model writes i, f, type and np on every layer: a module must not own those names."""
    name = "reserved names (i, f, type, np)"
    try:
        module = build(spec)
    except Exception as exc:
        return Check(name, False, first_line(exc))
    owned = [*module.named_parameters(), *module.named_modules(), *module.named_buffers()]
    clashes = sorted(
        {n for n, _ in owned if set(n.split(".")) & RESERVED_ATTRIBUTES} | (RESERVED_ATTRIBUTES & set(vars(module)))
    )
    return Check(name, not clashes, f"{', '.join(clashes)} collide with attributes Ultralytics sets" if clashes else "")


def check_in_model(spec: ModuleSpec, scale: str, model: str = MODEL) -> Check:
    """Inserted after layers 4, 6 and 8: the model builds at ``scale`` and passes the checks ``insert`` runs (forward
    at 640x640 and the two rectangular sizes, one training step giving every inserted parameter a gradient)."""
    name = f"in {model.removesuffix('.yaml')} at {scale}: build, forward, train"
    try:
        doc = model_doc.load(model)
        result = graph.insert(doc.graph, list(MODEL_AFTER), spec.name, _args(spec))
        cfg = model_doc.to_plain(tree_edits.apply(doc, result))
        built = ultra.build_model(cfg, scale, f"{doc.stem}-{spec.name}.yaml", seed=0)  # as insert verifies it
    except Exception as exc:
        return Check(name, False, f"build: {first_line(exc)}")
    layers = [i.index for i in result.insertions]
    cls = REGISTRY.load_class(spec.name)
    if not all(type(built.model[i]) is cls for i in layers):
        return Check(name, False, f"layers {layers} are not all {cls.__name__}")
    checks = verify.check_new_model(built, layers, {}, 640)
    failed = next((c for c in checks if c.ok is False), None)
    if failed is not None:
        return Check(name, False, f"{failed.name}: {failed.detail}")
    return Check(name, True, checks[-1].detail)


def check_onnx(spec: ModuleSpec) -> Check:
    """Exported to ONNX (opset 17) at 1x64x15x20, onnxruntime gives the torch output (1e-4). An odd height, as
    rectangular validation feeds (480x640 at stride 32): padding and block arithmetic traced from the shape must
    export right, not only at sizes every block divides."""
    name = "ONNX export parity"
    if not (importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")):
        return Check(name, None, "skipped: onnx/onnxruntime not installed (pip install attnsurgeon[export])")
    import numpy as np
    import onnxruntime as ort

    try:
        module = build(spec).eval()
        x = _sample(1, CHANNELS, 15, 20)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "module.onnx"
            names = {"input_names": ["x"], "output_names": ["y"]}
            torch.onnx.export(module, (x,), str(path), opset_version=17, dynamo=False, **names)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            (y_onnx,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            y = module(x).numpy()
    except Exception as exc:
        return Check(name, False, first_line(exc))
    diff = float(np.abs(y_onnx - y).max())
    ok = bool(np.allclose(y_onnx, y, atol=1e-4, rtol=1e-4))
    return Check(name, ok, f"max difference {diff:.2e}" + ("" if ok else " (tolerance 1e-4)"))


def check_cost(spec: ModuleSpec) -> Check:
    """Parameters and exact GFLOPs at the reference point C=256, 20x20 (what ``list`` shows)."""
    from attnsurgeon.costs.modules import REFERENCE_CHANNELS, REFERENCE_SIZE, reference_costs

    name = f"cost at C={REFERENCE_CHANNELS}, {REFERENCE_SIZE[0]}x{REFERENCE_SIZE[1]}"
    try:
        if ARGS in spec.extra:  # check-module --args: this configuration's cost, not the cached defaults'
            from attnsurgeon.costs.flops import count_params, exact_flops

            module = build(spec, REFERENCE_CHANNELS).eval()
            flops, _ = exact_flops(module, torch.zeros(1, REFERENCE_CHANNELS, *REFERENCE_SIZE))
            cost = {"params": count_params(module), "gflops": flops / 1e9}
        else:
            cost = reference_costs([spec])[spec.name]
    except Exception as exc:
        return Check(name, False, first_line(exc))
    return Check(name, True, f"{cost['params']:,} params, {cost['gflops']:.4f} GFLOPs")


def checks(spec: ModuleSpec, models: bool = True) -> Iterator[Callable[[], Check]]:
    """Every check of the contract, in the order ``check-module`` prints them (lazily: each runs when called)."""
    yield lambda: check_constructor(spec) if is_foreign(spec) else check_metadata(spec)
    for size in SIZES:
        yield lambda size=size: check_shape(spec, size)
    yield lambda: check_dtype(spec, torch.float32)
    yield lambda: check_dtype(spec, torch.bfloat16)
    yield lambda: check_dtype(spec, torch.float16, "cuda")
    yield lambda: check_gradients(spec)
    yield lambda: check_determinism(spec)
    yield lambda: check_batch_independence(spec)
    yield lambda: check_reserved_names(spec)
    if models:
        for scale in SCALES:
            yield lambda scale=scale: check_in_model(spec, scale)
    yield lambda: check_onnx(spec)
    yield lambda: check_cost(spec)


def run(name: str, models: bool = True, args: Sequence[Any] | None = None) -> list[Check]:
    """Run the whole contract on one catalog or plugin module (``args``: its hyper-parameters, else its defaults)."""
    spec = sources.resolve(name) if args is None else with_args(sources.resolve(name), args)
    ultra.register()
    return [check() for check in checks(spec, models)]
