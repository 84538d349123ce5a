"""Opt-in checks for what breaks after training starts: ONNX export, half precision, validation.

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


def parse_checks(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"export,half"``, ``"all"`` or names -> the checks to run, in :data:`EXTRA_CHECKS` order.

    An unknown name is a one-line :class:`UsageError` listing the valid ones.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    names = {item.strip().lower() for item in items if item.strip()}
    if ALL in names:
        return EXTRA_CHECKS
    unknown = sorted(names - set(EXTRA_CHECKS))
    if unknown:
        import difflib

        close = [m for name in unknown for m in difflib.get_close_matches(name, (*EXTRA_CHECKS, ALL), n=1)]
        guess = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UsageError(
            f"--checks {', '.join(unknown)}: unknown check{'s' if len(unknown) > 1 else ''}{guess}; "
            f"use any of {', '.join(EXTRA_CHECKS)} (comma-separated) or {ALL}"
        )
    return tuple(name for name in EXTRA_CHECKS if name in names)


def requested_checks(checks: str | Iterable[str] | None, verify: bool) -> tuple[str, ...]:
    """The opt-in checks asked for, validated before any work; they need verification (no ``--no-verify``)."""
    names = parse_checks(checks)
    if names and not verify:
        raise UsageError(f"--checks {','.join(names)} needs verification; drop --no-verify")
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
    """Run the named checks (see :data:`EXTRA_CHECKS`) on copies of ``model``; ``model`` itself is not changed.

    ``device``: cpu, cuda, cuda:N or N (a :class:`DeviceError` when it is not here). ``hints`` maps a layer index to
    a note added when that layer fails (a module's documented constraints); ``tag`` is appended to each check's name
    (the scale, when several are verified); ``progress`` hears the name of each check as it starts.
    """
    from attnsurgeon.checks import export as export_check
    from attnsurgeon.checks import half as half_check
    from attnsurgeon.checks import val as val_check
    from attnsurgeon.costs.device import parse_device

    wanted = parse_checks(names if isinstance(names, str) else list(names))
    dev = parse_device(device)
    hints = hints or {}
    step = progress or (lambda text: None)
    checks: list[Check] = []
    if "export" in wanted:
        step("check: ONNX export")
        checks.append(export_check.check_export(model, imgsz, hints))
    if "half" in wanted:
        step("check: half precision")
        checks.extend(half_check.check_half(model, imgsz, dev, hints))
    if "val" in wanted:
        step("check: validation batch")
        checks.append(val_check.check_val(model, imgsz, dev, hints))
    for check in checks:
        check.name += tag
    return checks
