"""``sweep --formats``: every variant exported to the formats people ship, checked there and timed there.

Per format (ONNX, TorchScript, OpenVINO, NCNN): the variant's ``--checks export:FORMAT`` (``export`` for ONNX) gives
``<format>_check`` (``pass`` or ``fail``, the one-line reason in ``deploy_reasons``), and a passing variant is exported
once more at imgsz (cached, :mod:`attnsurgeon.costs.runtime_latency`) and timed in its runtime interleaved with the
base's export in the same format: ``<format>_ms`` (its median) and ``<format>_ratio`` (variant / base, timed
together). The base row has its own ``<format>_ms`` and a ratio of 1. A format failing is a figure of the variant,
not a failed variant: the row stays ``ok`` and the other formats are still done. The variant's formats run in a child
process (:mod:`attnsurgeon.sweeps.format_cells`), so a runtime that dies natively (NCNN) is one cell, never the sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnsurgeon.errors import MissingExtraError, UsageError, first_line
from attnsurgeon.sweeps.store import DEPLOY_FORMATS
from attnsurgeon.ultralytics_bridge import exporting


def parse_formats(formats: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"onnx,torchscript"`` (or a list) as a tuple of known formats, in the order given, each once; each format's
    runtime is checked now, so a missing package is one line before any variant is made."""
    if formats is None:
        return ()
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    wanted = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    for fmt in wanted:
        if fmt not in DEPLOY_FORMATS:
            raise UsageError(f"--formats {fmt!r}: use one or more of {', '.join(DEPLOY_FORMATS)}")
        exporting.require(fmt)
    return wanted


class BaseDeployments:
    """The base model exported to each format once per sweep (and from the export cache on a rerun)."""

    def __init__(self, model: Any, imgsz: int) -> None:
        self.model, self.imgsz = model, imgsz
        self._deployed: dict[str, Any] = {}

    def get(self, fmt: str) -> Any:
        from attnsurgeon.costs.runtime_latency import deploy_format

        if fmt not in self._deployed:
            self._deployed[fmt] = deploy_format(self.model, fmt, (self.imgsz, self.imgsz), weights=False)
        return self._deployed[fmt]


def _inputs(imgsz: int) -> Any:
    import torch

    return torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))


def base_row(base: BaseDeployments, formats: Sequence[str], runs: int | None) -> dict[str, Any]:
    """The base's latency in each format (ratio 1); a format the base itself cannot take is a reason."""
    from attnsurgeon.costs.runtime_latency import time_deployed

    row: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for fmt in formats:
        try:
            [latency] = time_deployed([base.get(fmt)], _inputs(base.imgsz), runs=runs)
        except MissingExtraError:
            raise
        except Exception as exc:
            row[f"{fmt}_check"], reasons[fmt] = "fail", first_line(exc)
            continue
        row.update({f"{fmt}_ms": round(latency.median, 4), f"{fmt}_ratio": 1.0})
    row["deploy_reasons"] = reasons or None
    return row


def variant_row(
    variant: Path, base: BaseDeployments, model: str, scale: str | None, formats: Sequence[str], runs: int | None
) -> dict[str, Any]:
    """The variant's check, latency and ratio to the base in each format (see the module docstring), computed in a
    child process from the variant's file (:mod:`attnsurgeon.sweeps.format_cells`): a runtime that crashes costs one
    cell, never the sweep. ``model`` is the sweep's base model (a file or packaged name), ``base`` its exports."""
    from attnsurgeon.sweeps.format_cells import run_cells, variant_command

    for fmt in formats:
        base.get(fmt)  # exported once here: every child reads it from the export cache
    cells = run_cells(variant_command(variant, model, scale, base.imgsz, runs), formats)
    row: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for fmt in formats:
        cell = cells[fmt]
        row[f"{fmt}_check"] = cell.get("check", "fail")
        if cell.get("lost") or cell.get("reason"):
            reasons[fmt] = cell.get("lost") or cell["reason"]
        if "ms" in cell:
            row.update({f"{fmt}_ms": cell["ms"], f"{fmt}_ratio": cell["ratio"]})
    row["deploy_reasons"] = reasons or None
    return row
