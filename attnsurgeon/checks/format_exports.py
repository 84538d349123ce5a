"""The ``export:FORMAT`` checks: the whole model exported to TorchScript, OpenVINO or NCNN as ``yolo export
format=FORMAT`` does, loaded as ``yolo predict model=...`` loads it (Ultralytics' ``AutoBackend``), and compared with
PyTorch at imgsz and at a rectangular size.

Each size is its own fixed-size export (``dynamic=False``, Ultralytics' default, what is shipped): TorchScript and
NCNN freeze the head's anchors at the traced size, so a file traced at one size is wrong at another by design, not by
the module. The tolerance is the ONNX check's (:func:`attnsurgeon.checks.onnx_export.within_noise`): a multiple of
PyTorch's own rounding noise against float64, measured in place, at the precision the runtime computes in. OpenVINO
picks bf16 on CPUs with bf16 units: the deployed (bf16) run is compared with PyTorch's bf16 noise, and the same file
compiled in f32 with float32 noise, which is what finds a mistranslated op. Nothing is installed or downloaded: a
missing runtime is a :class:`MissingExtraError` naming the extra.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import torch
from torch import nn

from attnsurgeon.checks.onnx_export import (
    _ATEN_OP,
    FLOOR,
    _layer_running,
    _layer_type,
    _outside,
    within_noise,
    worst_text,
)
from attnsurgeon.checks.verify import (
    calibrated_copy,
    failed,
    flatten_tensors,
    layer_tracker,
    sample_image,
    square_and_rect,
)
from attnsurgeon.core.report import Check
from attnsurgeon.errors import AttnSurgeonError, first_line
from attnsurgeon.ultralytics_bridge import exporting, ncnn_param

FORMATS = ("torchscript", "openvino", "ncnn")
# The PyTorch precision whose noise bounds a deployed run: NCNN's fp16 storage keeps fp32 range and accumulation,
# while PyTorch computing wholly in float16 overflows to NaN on such networks; bfloat16 (fp32 range, fewer mantissa
# bits than fp16) gives a finite, larger bound.
_DTYPES = {"bf16": torch.bfloat16, "f16": torch.bfloat16}
# Over the 33 catalog modules in yolo11n at 160 (benchmarks/deploy_matrix.py), NCNN's f32 run of a correct export is
# within 1e-3 of the output's magnitude (at most 9.9e-4, EfficientAttention; SE 8e-5); a mistranslated op is off by
# a large fraction of it (0.49 GC, 0.64 ShuffleAttention). Held to bf16 noise instead, those two passed.
NCNN_FLOOR = 5e-3


def name_of(fmt: str) -> str:
    return f"export {fmt}"


def check_format(model: nn.Module, fmt: str, imgsz: int, hints: dict[int, str]) -> Check:
    """Export ``model`` to ``fmt`` at imgsz and at a rectangular size, run each file in its runtime through
    ``AutoBackend`` and compare with PyTorch. A missing runtime package raises :class:`MissingExtraError`."""
    exporting.require(fmt)
    sizes = square_and_rect(model, imgsz)
    seen: list[str] = []
    worst = 0.0
    source = calibrated_copy(model, imgsz, torch.device("cpu"))
    for size in sizes:
        result = _one_size(source, fmt, size, hints)
        if isinstance(result, Check):
            return result
        note, error = result
        seen.append(note)
        worst = max(worst, error)
    both = " and ".join(f"{h}x{w}" for h, w in sizes)
    return Check(
        name_of(fmt),
        True,
        f"{exporting.LABELS[fmt]} matches PyTorch at {both}{worst_text(worst)}"
        + "".join(n for n in dict.fromkeys(seen) if n),
    )


def _one_size(source: nn.Module, fmt: str, size: tuple[int, int], hints: dict[int, str]) -> tuple[str, float] | Check:
    """(a note, the worst relative error) when the export at ``size`` matches PyTorch; else the failed check."""
    name, label, at = name_of(fmt), exporting.LABELS[fmt], f"{size[0]}x{size[1]}"
    with tempfile.TemporaryDirectory(prefix=f"attnsurgeon-{fmt}-") as tmp:
        with layer_tracker(source) as state:
            try:
                torch_model, path = exporting.export(source, fmt, size, Path(tmp))
            except AttnSurgeonError:
                raise
            except Exception as exc:
                op = _ATEN_OP.search(str(exc))
                if op:  # the converter rejects an op after tracing: find the layer that runs it
                    index = _layer_running(source, op.group(1), size)
                    state = {"index": index, "type": _layer_type(source, index)} if index is not None else {}
                return failed(name, state, exc, hints, what=f"{label} export at {at} failed")
        try:
            backend = exporting.load(path)
        except AttnSurgeonError:
            raise
        except Exception as exc:
            return Check(name, False, f"{label} cannot load its export at {at}{load_error(exc, source)}")
        x = sample_image(source, size, torch.device("cpu"))
        precision = exporting.precision(backend)
        try:
            got = flatten_tensors(backend(x))
            strict = exporting.float32_run(backend, path)
            got32 = [torch.as_tensor(o) for o in strict(x)] if strict is not None else None
        except Exception as exc:
            unloadable = ncnn_param.load_problem(path, torch_model) if fmt == "ncnn" else None
            if unloadable:  # AutoBackend went on with an empty network: the call's IndexError says nothing
                return Check(name, False, f"at {at} {unloadable}{_suspects(source)}")
            return Check(name, False, f"{label} fails at {at}: {first_line(exc)}{_suspects(source)}")
    note = ""
    if got32 is not None:  # the runtime computes in bf16 here: f32 for translation errors, bf16 noise as deployed
        # NCNN's SIMD kernels approximate exp/sigmoid even in f32 (a full suite under load read 20x float32 noise on
        # SE): its f32 run gets a floor of NCNN_FLOOR of the output's magnitude on top of float32 noise
        floor = NCNN_FLOOR if fmt == "ncnn" else FLOOR
        problem, error = within_noise(got32, torch_model, x, torch.float32, floor)
        if problem is None:
            low, _ = within_noise(got, torch_model, x, _DTYPES.get(precision, torch.bfloat16))
            if low is not None:
                problem = f"as deployed ({precision}) {low}"
            note = f"; as deployed here it computes in {precision} (within PyTorch's own {precision} noise)"
    else:
        problem, error = within_noise(got, torch_model, x)
    if problem is not None:
        return Check(name, False, f"at {at} {label} {problem}{_suspects(source)}")
    return note, error


# OpenVINO names the failing node by its TorchScript scope: ``__module.model.9/aten::avg_pool2d/AvgPool_1``
_OV_NODE = re.compile(r"__module\.model\.(\d+)[\w.]*/aten::(\w+)")


def load_error(exc: BaseException, model: nn.Module) -> str:
    """Why a runtime refused the file, in one line: OpenVINO's reason is the last line of a stack of "Exception from
    src/..." lines, and its node name gives the layer and the op; else the layers from outside Ultralytics."""
    text = str(exc)
    lines = [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("Exception from ")]
    reason = lines[-1] if lines else first_line(exc)
    node = _OV_NODE.search(text)
    if node is None:
        return f": {reason}{_suspects(model)}"
    index = int(node.group(1))
    return f" in layer {index} ({_layer_type(model, index)}), op {node.group(2)}: {reason}"


def _suspects(model: nn.Module) -> str:
    """The layers of modules from outside torch and Ultralytics: where a runtime's mistranslation most likely is."""
    layers = list(getattr(model, "model", []))
    outside = [
        f"{i} ({_layer_type(model, i)})"
        for i, layer in enumerate(layers)
        if any(_outside(type(m)) for m in layer.modules())
    ]
    return f"; layers from outside Ultralytics: {', '.join(outside)}" if outside else ""
