"""The ``export`` check: the whole model exported to ONNX as ``yolo export format=onnx`` does, run in onnxruntime at
imgsz and at a rectangular size, and compared with PyTorch.

Ultralytics' own exporter does the export (eval, ``requires_grad`` off, fused, ``export``/``format``/``dynamic`` set
on the heads, its opset, TorchScript-based ``torch.onnx.export``), into a temporary directory; nothing is installed
or downloaded. A dynamic-axes export serves both sizes; when it fails only at the rectangular size, a second,
fixed-size export there tells whether the layer merely freezes a shape at trace time (then ``dynamic=True`` exports
fail, fixed-size ones work, and the check passes saying so).
"""

from __future__ import annotations

import copy
import inspect
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnsurgeon.checks.verify import (
    calibrated_copy,
    failed,
    flatten_tensors,
    layer_tracker,
    sample_image,
    square_and_rect,
    text_model,
)
from attnsurgeon.core.report import Check
from attnsurgeon.ultralytics_bridge import ultra

NAME = "export onnx"
# onnxruntime and PyTorch run the same float32 graph with other kernels and summation orders, and a randomly
# initialised network (batch-norm statistics set from data, see verify.calibrated_copy) amplifies rounding with depth.
# The noise is measured in place: PyTorch float32 against the same model in float64. Over the packaged
# detect/segment/pose/obb/classify models, rtdetr-l and yolo11n with SE and CBAM, onnxruntime's deviation from
# PyTorch float32 is 0.7x to 2.8x PyTorch float32's own deviation from float64; NOISE_FACTOR leaves 3.5x headroom,
# and FLOOR (of the output's magnitude) covers outputs whose float32 rounding happens to vanish. A frozen shape, a
# mistranslated op or a wrong branch moves outputs by a large fraction of their magnitude.
NOISE_FACTOR = 10.0
FLOOR = 1e-5
_NODE_LAYER = re.compile(r"/model\.(\d+)/")
_ATEN_OP = re.compile(r"aten::(\w+)")


def check_export(model: nn.Module, imgsz: int, hints: dict[int, str]) -> Check:
    """Export to ONNX and compare onnxruntime with PyTorch at imgsz and one rectangular size.

    One dynamic-axes export serves both sizes. Where it fails at the rectangular size, a fixed-size export there
    (``dynamic=False``, Ultralytics' default, what the module contract asks for) decides: the check passes, saying
    that ``dynamic=True`` exports fail and where, or fails.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError as exc:
        return Check(NAME, None, f"skipped: {exc.name} is not installed (pip install onnx onnxruntime)")
    if text_model(model):
        return Check(NAME, None, f"skipped: {type(model).__name__} exports only after its text embeddings are set")
    square, rect = square_and_rect(model, imgsz)
    with tempfile.TemporaryDirectory(prefix="attnsurgeon-onnx-") as tmp:
        source = calibrated_copy(model, imgsz, torch.device("cpu"))
        exported = _export(source, imgsz, Path(tmp) / "dynamic.pt", dynamic=True, hints=hints)
        if isinstance(exported, Check):
            return exported
        torch_model, path, traced = exported
        session = _session(onnxruntime, path, torch_model)
        if isinstance(session, str):
            return Check(NAME, False, f"onnxruntime {session}")
        opset = _opset(path)
        problem, worst = _compare(session, torch_model, sample_image(model, square, torch.device("cpu")))
        if problem is not None:
            return Check(NAME, False, f"at {_text(square)} onnxruntime {problem}")
        problem, worst_rect = _compare(session, torch_model, sample_image(model, rect, torch.device("cpu")))
        both = f"{_text(square)} and {_text(rect)}"
        if problem is None:
            worst = max(worst, worst_rect)
            return Check(NAME, True, f"dynamic-axes ONNX (opset {opset}) matches PyTorch at {both}{worst_text(worst)}")
        frozen = _frozen_shapes(traced, model)
        dynamic_note = f"dynamic=True exports fail: at {_text(rect)} onnxruntime {problem}" + (
            f"; {frozen}" if frozen else ""
        )
        fixed, worst_fixed = _fixed_size_problem(source, onnxruntime, rect, Path(tmp) / "fixed.pt", hints)
    if fixed is None:
        matches = f"matches PyTorch at {both}{worst_text(max(worst, worst_fixed))}"
        return Check(NAME, True, f"fixed-size ONNX (opset {opset}, dynamic=False) {matches}; but {dynamic_note}")
    return Check(NAME, False, f"fixed-size export at {_text(rect)}: {fixed}; {dynamic_note}")


def _text(size: Sequence[int]) -> str:
    return f"{size[0]}x{size[1]}"


def worst_text(error: float) -> str:
    """The worst relative error of a passing comparison, as every format check words it (:func:`worst_of` reads it
    back)."""
    return f" (worst |Δ| {error:.2g} of the output)"


def worst_of(detail: str) -> float | None:
    """The worst relative error a passing check's detail states (:func:`worst_text`), None when it states none."""
    found = re.search(r"worst \|Δ\| ([0-9.e+-]+)", detail)
    return float(found.group(1)) if found else None


def _export(
    source: nn.Module, imgsz: int | Sequence[int], pt_path: Path, dynamic: bool, hints: dict[int, str]
) -> tuple[nn.Module, str, list[Any]] | Check:
    """Ultralytics' ONNX export of ``source`` next to ``pt_path``: (the exported PyTorch model, the file, the
    tracer warnings), or a failed check naming the layer."""
    from ultralytics.engine.exporter import Exporter

    source.pt_path = str(pt_path)  # the exporter writes <pt_path stem>.onnx beside it
    overrides = {"format": "onnx", "imgsz": imgsz, "dynamic": dynamic, "simplify": False, "device": "cpu", "batch": 1}
    with layer_tracker(source) as state, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with ultra.quiet(), ultra.no_autoinstall():
                exporter = Exporter(overrides=overrides)
                path = exporter(source)
        except Exception as exc:
            op = _ATEN_OP.search(str(exc))
            if op:  # the op fails in the ONNX conversion after tracing: find the layer that runs it
                index = _layer_running(source, op.group(1), imgsz)
                state = {"index": index, "type": _layer_type(source, index)} if index is not None else {}
            return failed(NAME, state, exc, hints, what="export failed")
    traced = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    return exporter.model, path, traced


def _session(onnxruntime: Any, path: str, model: nn.Module) -> Any:
    """An onnxruntime session, or the reason it cannot load the file (a string)."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # errors come back as exceptions; do not also print them
    try:
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return "cannot load the file" + _ort_error(exc, model).removeprefix("fails")


def _ort_error(exc: BaseException, model: nn.Module) -> str:
    """An onnxruntime error in one line, naming the layer from the failing node's name (``/model.9/Reshape``)."""
    message = " ".join(str(exc).split())
    node = _NODE_LAYER.search(message)
    where = f" in layer {node.group(1)} ({_layer_type(model, int(node.group(1)))})" if node else ""
    reason = re.sub(r"\S+\.(h|cc|cpp):\d+ \w+ ", "", message.split("Status Message:")[-1]).strip()  # source refs
    sentences = [s for s in re.split(r"(?<=\.)\s+", reason) if s and not s.startswith("/")]
    return f"fails{where}: {' '.join(sentences[-2:])[-300:]}"


def _compare(session: Any, torch_model: nn.Module, x: torch.Tensor) -> tuple[str | None, float]:
    """(None when onnxruntime matches PyTorch on ``x``, else what went wrong, naming the layer where known; the worst
    |Δ| as a fraction of the output's magnitude)."""
    try:
        onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    except Exception as exc:
        return _ort_error(exc, torch_model), float("inf")
    got = [torch.from_numpy(o) for o in onnx_out]
    return within_noise(got, torch_model, x)


def within_noise(
    got: list[torch.Tensor],
    torch_model: nn.Module,
    x: torch.Tensor,
    dtype: torch.dtype = torch.float32,
    floor: float = FLOOR,
) -> tuple[str | None, float]:
    """(None when ``got`` matches PyTorch on ``x`` within :data:`NOISE_FACTOR` times the noise of PyTorch itself in
    ``dtype`` (the runtime's precision) against float64, else what differs; the worst |Δ| as a fraction of the
    output's magnitude)."""
    with torch.inference_mode():
        reference = flatten_tensors(torch_model(x))
        exact = flatten_tensors(copy.deepcopy(torch_model).double()(x.double()))
        low = (
            reference if dtype == torch.float32 else flatten_tensors(copy.deepcopy(torch_model).to(dtype)(x.to(dtype)))
        )
    if [tuple(t.shape) for t in got] != [tuple(t.shape) for t in reference]:
        shapes = [tuple(t.shape) for t in got]
        return f"gives outputs of shapes {shapes}, PyTorch {[tuple(t.shape) for t in reference]}", float("inf")
    worst = 0.0
    for out, ref, ref_low, ref64 in zip(got, reference, low, exact, strict=True):
        noise = float((ref_low.double() - ref64).abs().max())
        magnitude = float(ref64.abs().max())
        allowed = NOISE_FACTOR * noise + floor * magnitude
        diff = float((out.double() - ref.double()).abs().max())
        worst = max(worst, diff / magnitude if magnitude else diff)
        if not diff <= allowed:  # NaN too
            rounding = "float32" if dtype == torch.float32 else str(dtype).removeprefix("torch.")
            return (
                f"differs from PyTorch: max |Δ| {diff:.3g} where {rounding} rounding alone gives {noise:.3g} "
                f"(allowed {allowed:.3g})"
            ), float("inf") if diff != diff else worst
    return None, worst


def _fixed_size_problem(
    source: nn.Module, onnxruntime: Any, size: tuple[int, int], pt_path: Path, hints: dict[int, str]
) -> tuple[str | None, float]:
    """(None when a fixed-size export at ``size`` (dynamic=False) matches PyTorch there, else what went wrong; the
    worst relative error)."""
    exported = _export(source, list(size), pt_path, dynamic=False, hints=hints)
    if isinstance(exported, Check):
        return exported.detail, float("inf")
    torch_model, path, _ = exported
    session = _session(onnxruntime, path, torch_model)
    if isinstance(session, str):
        return f"onnxruntime {session}", float("inf")
    problem, worst = _compare(session, torch_model, sample_image(source, size, torch.device("cpu")))
    return (None if problem is None else f"onnxruntime {problem}"), worst


def _frozen_shapes(traced: list[Any], model: nn.Module) -> str:
    """Tracer warnings raised in a layer's own source: where a size computed in Python is frozen into the graph."""
    files = _layer_files(model)
    for w in traced:
        index = files.get(str(Path(w.filename).resolve()))
        if index is not None:
            return (
                f"layer {index} ({_layer_type(model, index)}) computes a size in Python at "
                f"{Path(w.filename).name}:{w.lineno}, which the trace freezes; fix: derive it from tensor shapes "
                "without int()/math on them, or pad to a fixed multiple with tensor ops"
            )
    return ""


def _layer_files(model: nn.Module) -> dict[str, int]:
    """Source file of each module class -> the first layer index using it, for classes outside torch/Ultralytics."""
    files: dict[str, int] = {}
    for index, layer in enumerate(getattr(model, "model", [])):
        for module in layer.modules():
            cls = type(module)
            if not _outside(cls):
                continue
            try:
                files.setdefault(str(Path(inspect.getfile(cls)).resolve()), index)
            except (TypeError, OSError):
                continue
    return files


def _outside(cls: type) -> bool:
    """A module class defined outside torch and Ultralytics (a catalog module, a plugin, a user's class)."""
    return cls.__module__.split(".")[0] not in ("torch", "ultralytics")


def _layer_running(model: nn.Module, op: str, imgsz: int | Sequence[int]) -> int | None:
    """The first layer whose traced graph has ``aten::op`` (an op the ONNX converter rejects after tracing).

    Each layer is traced on its own, on the input it gets in a forward pass, as the exporter traces it; layers of
    modules outside torch and Ultralytics are tried first.
    """
    size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    layers = list(getattr(model, "model", []))
    inputs: dict[int, Any] = {}
    handles = [
        layer.register_forward_pre_hook(lambda m, args, i=i: inputs.setdefault(i, args) and None)
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            model(sample_image(model, size, torch.device("cpu")))
    except Exception:
        return None
    finally:
        for h in handles:
            h.remove()
    outside = {i for i, layer in enumerate(layers) if any(_outside(type(m)) for m in layer.modules())}
    for index in sorted(inputs, key=lambda i: (i not in outside, i)):
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(layers[index], inputs[index], check_trace=False, strict=False)
        except Exception:
            continue
        if f"aten::{op}" in str(traced.inlined_graph):
            return index
    return None


def _layer_type(model: nn.Module, index: int) -> str:
    layers = getattr(model, "model", None)
    if layers is None or index >= len(layers):
        return "?"
    return str(getattr(layers[index], "type", type(layers[index]).__name__)).rsplit(".", 1)[-1]


def _opset(path: str) -> int | str:
    import onnx

    try:
        imports = onnx.load(path, load_external_data=False).opset_import
        return next(o.version for o in imports if o.domain in ("", "ai.onnx"))
    except (OSError, StopIteration, ValueError):
        return "?"
