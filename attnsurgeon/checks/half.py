"""The ``half`` checks: the model in half precision, as Ultralytics trains it with ``amp=True`` (autocast) and as
``half=True`` inference and float16 exports run it (float16 weights).

Each run is judged three ways: it raises no error (a float32 tensor made inside a module meets a half input:
"expected scalar type Half but found Float"); every layer before the head gives finite outputs (float16 overflows
above 65504); and each layer, fed the float32 run's inputs, stays close to its float32 output. The last is measured
layer by layer because a randomly initialised network amplifies any perturbation with depth: end to end, even the
unmodified yolo11n differs from float32 by 25 % under bfloat16, while each layer on its own differs by well under
1 %, so a precision-fragile layer stands out and is named. The batch-norm statistics of the copy are first set from
two random images (as a trained model's are from data), so activations have a trained model's scale instead of
shrinking layer by layer into float16's subnormal range. Under autocast, one training step's loss and gradients must
be finite too. On CUDA, Ultralytics' own AMP check runs on the real model.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from attnsurgeon.checks.verify import (
    all_finite,
    calibrated_copy,
    failed,
    flatten_tensors,
    layer_tracker,
    sample_image,
    synthetic_batch,
    task_of,
    text_model,
    working_copy,
)
from attnsurgeon.core.report import Check
from attnsurgeon.ultralytics_bridge import ultra

# Per layer, ||half - float32|| / ||float32|| over its output tensors, given the same float32 inputs. One rounding
# is 2^-9 relative for bfloat16 and 2^-12 for float16. Measured at 640 on the packaged yolo11n, yolov8n-seg,
# yolo11n-pose, yolo11n-obb, yolo11n-cls and rtdetr-l and on yolo11n with SE, CBAM, HaloAttention,
# BiLevelRoutingAttention, CrissCrossAttention, DAttention, EfficientAttention and CoordAtt (and every catalog module
# at 320), the worst layer is 0.023 under bfloat16 and 0.0038 under float16 (SPPF, CascadedGroupAttention); the
# tolerances leave more than 4x headroom. A layer that loses its signal in half precision (catastrophic
# cancellation, a float16 underflow to 0, a saturated softmax) is off by tens of percent.
TOLERANCE = {torch.bfloat16: 0.1, torch.float16: 0.015}
_CPU_HALF_MISSING = re.compile(r"not implemented for '(Half|BFloat16)'", re.IGNORECASE)
Runner = Callable[[int, nn.Module, tuple[Any, ...]], Any]


def check_half(model: nn.Module, imgsz: int, device: torch.device, hints: dict[int, str]) -> list[Check]:
    checks = [_check_autocast(model, imgsz, device, hints), _check_half_weights(model, imgsz, device, hints)]
    if device.type == "cuda":
        checks.append(check_ultralytics_amp(model, device))
    return checks


def autocast_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _check_autocast(model: nn.Module, imgsz: int, device: torch.device, hints: dict[int, str]) -> Check:
    dtype = autocast_dtype(device)
    name = f"half: autocast {str(dtype).removeprefix('torch.')}"
    clone = calibrated_copy(model, imgsz, device)
    x = sample_image(model, (imgsz, imgsz), device)

    def run(index: int, layer: nn.Module, args: tuple[Any, ...]) -> Any:
        with torch.autocast(device.type, dtype=dtype):
            return layer.forward(*args)

    with layer_tracker(clone) as state, _finite_outputs(clone) as finite:
        try:
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype):
                clone(x)
        except Exception as exc:
            return failed(name, state, exc, hints, what="forward")
    problem = _judge(clone, x, finite, run, dtype)
    if problem:
        return Check(name, False, f"forward: {problem}")
    forward = f"every layer within {TOLERANCE[dtype]:g} of float32"
    if text_model(model):
        return Check(name, True, f"{forward}; training step not run ({type(model).__name__} needs text embeddings)")
    return _train_step(clone, name, forward, imgsz, device, dtype, hints)


def _train_step(
    clone: nn.Module, name: str, forward: str, imgsz: int, device: torch.device, dtype: torch.dtype, hints: dict
) -> Check:
    """One loss under autocast and its backward (float32 weights, as the trainer runs it): all finite."""
    size = max(2 * ultra.model_stride(clone), min(imgsz, 320) // 32 * 32)
    clone.train()
    batch = synthetic_batch(clone, size)
    with layer_tracker(clone) as state, _finite_outputs(clone) as finite:
        try:
            with torch.autocast(device.type, dtype=dtype):
                loss, _ = clone.loss(batch)
                total = loss.sum()
        except Exception as exc:
            return failed(name, state, exc, hints, what="training loss")
    if not torch.isfinite(total):
        layer = _first_non_finite(finite)
        first = f"; layer {layer} ({_type(clone, layer)}) is the first with a non-finite output"
        where = first if layer is not None else ""
        return Check(name, False, f"training loss is {float(total.detach())} under autocast{where}{_fix(dtype)}")
    try:
        total.backward()
    except Exception as exc:
        return failed(name, {}, exc, hints, what="backward")
    bad = [n for n, p in clone.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        return Check(name, False, f"non-finite gradients under autocast in {', '.join(bad[:3])}{_fix(dtype)}")
    return Check(name, True, f"{forward}; training loss {float(total.detach()):.3f} and gradients finite")


def _check_half_weights(model: nn.Module, imgsz: int, device: torch.device, hints: dict[int, str]) -> Check:
    name = "half: float16 weights"
    clone = calibrated_copy(model, imgsz, device)
    x = sample_image(model, (imgsz, imgsz), device)
    halved = copy.deepcopy(clone).half()

    def run(index: int, layer: nn.Module, args: tuple[Any, ...]) -> Any:
        return halved.model[index].forward(*_to(args, torch.float16))

    with layer_tracker(halved) as state, _finite_outputs(halved) as finite:
        try:
            with torch.inference_mode():
                halved(x.half())
        except Exception as exc:
            if device.type == "cpu" and _CPU_HALF_MISSING.search(str(exc)):  # a gap of CPU kernels, not of the model
                layer = f" in layer {state['index']} ({state['type']})" if "index" in state else ""
                why = str(exc).splitlines()[0]
                why = f"skipped: PyTorch on CPU has no float16 kernel{layer} ({why}); run on CUDA"
                return Check(name, None, why)
            return failed(name, state, exc, hints, what="forward")
    problem = _judge(clone, x, finite, run, torch.float16)
    if problem:
        return Check(name, False, f"forward: {problem}")
    return Check(name, True, f"model.half(): every layer within {TOLERANCE[torch.float16]:g} of float32")


def _judge(clone: nn.Module, x: torch.Tensor, finite: dict[int, bool], run: Runner, dtype: torch.dtype) -> str:
    """'' when every layer before the head had finite outputs in the half run and, fed the float32 run's inputs,
    stays within tolerance of its float32 output; else the first layer that did not.

    The head is Ultralytics' code, judged by the training loss (RT-DETR's decoder carries anchors that are infinite
    by design outside the image, which float16 does not mask).
    """
    layer = _first_non_finite(finite)
    if layer is not None:
        return f"layer {layer} ({_type(clone, layer)}) is the first with a NaN/Inf output{_fix(dtype)}"
    errors = _layer_errors(clone, x, run)
    tol = TOLERANCE[dtype]
    worst = next((i for i in sorted(errors) if errors[i] > tol), None)
    if worst is None:
        return ""
    return (
        f"layer {worst} ({_type(clone, worst)}) differs from float32 by {errors[worst]:.3g} (relative RMS, "
        f"tolerance {tol:g}) on the same inputs{_fix(dtype, overflow=False)}"
    )


def _layer_errors(model: nn.Module, x: torch.Tensor, run: Runner) -> dict[int, float]:
    """Relative RMS error of each layer before the head, run in half precision on the float32 run's inputs."""
    errors: dict[int, float] = {}

    def hook(index: int) -> Any:
        def compare(layer: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            half = flatten_tensors(run(index, layer, args))
            ref = flatten_tensors(out)
            if len(half) != len(ref) or not all_finite(half):
                errors[index] = float("inf")
                return
            pairs = [(h.float(), r.float()) for h, r in zip(half, ref, strict=True) if r.is_floating_point()]
            errors[index] = max(
                (float((h - r).norm() / r.norm().clamp_min(1e-12)) for h, r in pairs if r.numel()), default=0.0
            )

        return compare

    layers = list(getattr(model, "model", []))[:-1]
    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return errors


def _to(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, dtype) for v in value)
    return value


def _first_non_finite(finite: dict[int, bool]) -> int | None:
    return next((i for i in sorted(finite) if not finite[i]), None)


def _fix(dtype: torch.dtype, overflow: bool = True) -> str:
    if dtype != torch.float16:
        return "; fix: compute the fragile part in float32 inside the module (x.float(), then .to(x.dtype))"
    what = "overflows above 65504 and rounds eps < 6e-8 to 0" if overflow else "keeps 11 bits of mantissa"
    return (
        f"; fix: float16 {what}: scale attention logits before the softmax, use eps >= 1e-5, or compute that part "
        "in float32 inside the module (x.float(), then .to(x.dtype))"
    )


@contextlib.contextmanager
def _finite_outputs(model: nn.Module) -> Iterator[dict[int, bool]]:
    """Whether each layer before the head gave a finite output on its first run, by index; keeps no tensors."""
    finite: dict[int, bool] = {}

    def hook(index: int) -> Any:
        def record(module: nn.Module, args: Any, out: Any) -> None:  # returning a value would replace the output
            finite.setdefault(index, all_finite(out))

        return record

    layers = list(getattr(model, "model", []))[:-1]
    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        yield finite
    finally:
        for h in handles:
            h.remove()


def _type(model: nn.Module, index: int | None) -> str:
    if index is None:
        return "?"
    layer = model.model[index]
    return str(getattr(layer, "type", type(layer).__name__)).rsplit(".", 1)[-1]


# --------------------------------------------------------------------------------------------------------------------
# Ultralytics' AMP check on the real model (CUDA only)


def check_ultralytics_amp(model: nn.Module, device: torch.device) -> Check:
    """Run ``ultralytics.utils.checks.check_amp`` with the model under test in place of its reference weights.

    check_amp loads ``WEIGHTS_DIR/<name>.pt`` (downloading it when missing) and compares its float32 and autocast
    detections on ``bus.jpg`` (within 0.5 pixels). Pointing ``WEIGHTS_DIR`` at a temporary directory that holds the
    model under test, saved under that name, runs Ultralytics' own comparison on this model with no download.
    """
    from ultralytics import utils
    from ultralytics.utils import checks as ultralytics_checks

    name = "half: Ultralytics AMP check"
    if type(model).__name__ == "RTDETRDetectionModel" or text_model(model):
        why = "an RT-DETR model needs RTDETR's predictor" if not text_model(model) else "it needs text embeddings"
        return Check(name, None, f"skipped: check_amp predicts through YOLO(...), and {why}")
    weights = re.search(r'WEIGHTS_DIR\s*/\s*"([\w.-]+\.pt)"', inspect.getsource(ultralytics_checks.check_amp))
    if weights is None:
        return Check(name, None, "skipped: this Ultralytics' check_amp no longer loads WEIGHTS_DIR/<name>.pt")
    records: list[str] = []
    handler = _Collect(records)
    clone = working_copy(model, device)
    saved_dir = utils.WEIGHTS_DIR
    with tempfile.TemporaryDirectory(prefix="attnsurgeon-amp-") as tmp:
        torch.save({"model": copy.deepcopy(clone).cpu(), "train_args": {}}, Path(tmp) / weights.group(1))
        level = utils.LOGGER.level
        utils.LOGGER.addHandler(handler)
        utils.LOGGER.setLevel(logging.INFO)  # its verdict is in its log lines
        utils.WEIGHTS_DIR = Path(tmp)
        try:
            with ultra.no_autoinstall():
                passed = ultralytics_checks.check_amp(clone)
        except Exception as exc:
            return Check(name, False, f"check_amp raised {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
        finally:
            utils.WEIGHTS_DIR = saved_dir
            utils.LOGGER.removeHandler(handler)
            utils.LOGGER.setLevel(level)
    said = " ".join(records)
    if "GPU may cause" in said:
        return Check(name, None, f"skipped: Ultralytics disables AMP on this GPU whatever the model ({said})")
    if "skipped" in said:
        task = task_of(model)
        why = f"it compares boxes, which a {task} model's results lack" if task in ("classify", "obb") else said
        return Check(name, None, f"skipped by Ultralytics: {why}")
    if not passed:
        return Check(name, False, f"Ultralytics disables AMP for this model: {said or 'check_amp returned False'}")
    return Check(
        name,
        True,
        "check_amp passed: float32 and autocast predictions on bus.jpg agree within 0.5 px (it compares boxes above "
        "0.25 confidence, which untrained weights rarely give: then it proves prediction runs under autocast)",
    )


class _Collect(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.INFO)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())
