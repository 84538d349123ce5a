"""Opt-in checks for what breaks after training starts: export (ONNX; TorchScript, OpenVINO, NCNN), half precision,
validation.

Users of custom attention layers meet these failures after the model has trained: mixed precision (NaN losses,
"expected scalar type Half but found Float"), validation-only crashes at rectangular sizes, and ONNX export of the
new layer. Each check here takes a built Ultralytics model, works on a copy, and returns :class:`verify.Check`
objects that name the failing layer and, where one is known, the fix. ``onnx``/``onnxruntime`` are imported only by
the export check, which is reported as skipped (``ok=None``) when they are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from attnsurgeon.errors import UsageError

if TYPE_CHECKING:  # torch is imported only when a check runs: parsing --checks stays light
    import torch
    from torch import nn

    from attnsurgeon.core.report import Check

EXTRA_CHECKS = ("export", "half", "val")
ALL = "all"
# export:FORMAT exports through Ultralytics and runs the file in its runtime (checks/format_exports.py); export:onnx
# is the landed ``export`` check. They come after ``export`` and before ``half``; ``all`` stays export, half, val.
EXPORT_FORMATS = ("onnx", "torchscript", "openvino", "ncnn")
FORMAT_CHECKS = tuple(f"export:{fmt}" for fmt in EXPORT_FORMATS[1:])
ORDER = ("export", *FORMAT_CHECKS, "half", "val")


def parse_checks(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"export,half"``, ``"all"``, ``"export:onnx,openvino,ncnn"`` or names -> the checks to run, in :data:`ORDER`.

    ``export:FORMAT`` asks for a format (``export:onnx`` is ``export``; ``export:all`` every format); a bare format
    name right after an ``export:`` item continues that list. An unknown name is a one-line :class:`UsageError`
    listing the valid ones.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names: set[str] = set()
    unknown: list[str] = []
    in_export = False
    for raw in items:
        item = raw.strip().lower()
        if not item:
            continue
        head, colon, fmt = item.partition(":")
        if colon and head == "export" and fmt.strip() in (*EXPORT_FORMATS, ALL):
            in_export = True
            item = fmt.strip()
            names.update(("export", *FORMAT_CHECKS) if item == ALL else (_export_check(item),))
        elif item in (*EXTRA_CHECKS, ALL):
            in_export = False  # a check's name ends an export: list
            names.update(EXTRA_CHECKS if item == ALL else (item,))
        elif in_export and item in EXPORT_FORMATS:
            names.add(_export_check(item))
        else:
            unknown.append(item)
    if unknown:
        import difflib

        valid = (*EXTRA_CHECKS, ALL, *(f"export:{fmt}" for fmt in EXPORT_FORMATS))
        close = [m for name in unknown for m in difflib.get_close_matches(name, valid, n=1)]
        guess = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(
            f"--checks {', '.join(unknown)}: unknown check{'s' if len(unknown) > 1 else ''}{guess}; "
            f"use any of {', '.join(EXTRA_CHECKS)} (comma-separated) or {ALL}, or "
            f"export:FORMAT with FORMAT {', '.join(EXPORT_FORMATS)} or all"
        )
    return tuple(name for name in ORDER if name in names)


def _export_check(fmt: str) -> str:
    return "export" if fmt == "onnx" else f"export:{fmt}"


def requested_checks(checks: str | Iterable[str] | None, verify: bool) -> tuple[str, ...]:
    """The opt-in checks asked for, validated before any work; they need verification (no ``--no-verify``)."""
    names = parse_checks(checks)
    if names and not verify:
        raise UsageError(f"--checks {','.join(names)} needs verification; drop --no-verify")
    if any(name in FORMAT_CHECKS for name in names):
        from attnsurgeon.ultralytics_bridge import exporting

        for name in names:
            if name in FORMAT_CHECKS:
                exporting.require(name.partition(":")[2])  # a missing runtime is one line before any work
    return names


def run_extra_checks(
    model: nn.Module,
    names: Iterable[str],
    imgsz: int,
    device: str | torch.device = "cpu",
    hints: dict[int, str] | None = None,
    tag: str = "",
    progress: Callable[[str], None] | None = None,
) -> list[Check]:
    """Run the named checks (see :data:`ORDER`) on copies of ``model``; ``model`` itself is not changed.

    ``device``: cpu, cuda, cuda:N or N (a :class:`DeviceError` when it is not here). ``hints`` maps a layer index to
    a note added when that layer fails (a module's documented constraints); ``tag`` is appended to each check's name
    (the scale, when several are verified); ``progress`` hears the name of each check as it starts.
    """
    from attnsurgeon.checks import half as half_check
    from attnsurgeon.checks import onnx_export as export_check
    from attnsurgeon.checks import val_batch as val_check
    from attnsurgeon.costs.device import parse_device

    wanted = parse_checks(names if isinstance(names, str) else list(names))
    dev = parse_device(device)
    hints = hints or {}
    step = progress or (lambda text: None)
    checks: list[Check] = []
    if "export" in wanted:
        step("check: ONNX export")
        checks.append(export_check.check_export(model, imgsz, hints))
    for name in wanted:
        if name in FORMAT_CHECKS:
            from attnsurgeon.checks import format_exports

            fmt = name.partition(":")[2]
            step(f"check: {fmt} export")
            checks.append(format_exports.check_format(model, fmt, imgsz, hints))
    if "half" in wanted:
        step("check: half precision")
        checks.extend(half_check.check_half(model, imgsz, dev, hints))
    if "val" in wanted:
        step("check: validation batch")
        checks.append(val_check.check_val(model, imgsz, dev, hints))
    for check in checks:
        check.name += tag
    return checks
