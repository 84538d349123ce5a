"""A variant's deployment cells (one per format) in a child process, so that a runtime dying natively is one cell.

NCNN segfaults or aborts on some exports (``CBAM``, ``EMA`` in the deploy matrix); in the sweep's own process that
ended the whole sweep. Here the variant's formats run in a child (``python -m attnsurgeon.sweeps.format_cells``) that
builds the variant from its YAML, runs each format's check, and times a passing export interleaved with the base's
(both exports from the cache the sweep filled). The child writes one marked JSON line per format as it starts and
as it finishes it (fd 1 is shared with native code, hence the mark). A child that dies costs the format it was on,
named ``crashed: signal 11 (SIGSEGV)``; a fresh child carries on with the remaining formats; a format past the
timeout is ``timed out``. ``benchmarks/deploy_matrix.py`` runs its cells the same way (:func:`run_cells`).
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MARK = "CELL "
CELL_TIMEOUT_S = 900  # one format of one variant: export at two sizes, check, export at imgsz, timing


def emit(fmt: str, **fields: Any) -> None:
    """One marked line for the parent (``started=True`` as a format begins, then its figures)."""
    print(MARK + json.dumps({"format": fmt, **fields}), flush=True)


def _pump(child: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        lines.put(line)
    lines.put(None)


def lost_reason(code: int, timed_out: bool, timeout_s: float) -> str:
    """Why a child stopped before reporting a format, as a cell says it."""
    if timed_out:
        return f"timed out after {timeout_s:g} s"
    if code < 0:
        return f"crashed: signal {-code} ({signal.Signals(-code).name})"
    return f"child exited with status {code} before reporting"


def run_cells(
    command: Callable[[list[str]], list[str]], formats: Sequence[str], timeout_s: float = CELL_TIMEOUT_S
) -> dict[str, dict[str, Any]]:
    """Format -> the cell a child reported, each format in a child (``command(todo)`` is its argv) until one dies;
    then a fresh child for the rest. A lost format's cell is ``{"lost": reason}``."""
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(formats):
        todo = [f for f in formats if f not in done]
        child = subprocess.Popen(command(todo), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(child, lines), daemon=True).start()
        current: str | None = None
        deadline, timed_out = time.monotonic() + timeout_s, False
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                timed_out = True
                child.kill()
                break
            if line is None:
                break
            if line.startswith(MARK):
                cell = json.loads(line[len(MARK) :])
                current, deadline = cell["format"], time.monotonic() + timeout_s
                if not cell.get("started"):
                    done[cell["format"]], current = cell, None
        code = child.wait()
        lost = current or next((f for f in todo if f not in done), None)
        if lost is None:
            break
        done[lost] = {"format": lost, "lost": lost_reason(code, timed_out, timeout_s)}
    return done


def variant_command(variant: Path, base: str, scale: str | None, imgsz: int, runs: int | None) -> Callable:
    """The argv of a child that runs ``variant``'s cells against ``base`` (a model file or packaged name)."""

    def argv(formats: list[str]) -> list[str]:
        return [sys.executable, "-m", "attnsurgeon.sweeps.format_cells", str(variant), "--base", base,
                "--scale", scale or "", "--imgsz", str(imgsz), "--runs", str(runs or 0),
                "--formats", ",".join(formats)]  # fmt: skip

    return argv


def _build(model: str, scale: str | None) -> Any:
    from attnsurgeon import sources
    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.sweeps.train import plugins_of
    from attnsurgeon.ultralytics_bridge import ultra

    doc = model_doc.load(model)
    sources.add_files(plugins_of(doc.path))  # as a training process does: the sweep recorded the user's own --plugin
    # the full path: the plugin files a variant records are found beside it, as a fresh Ultralytics process finds them
    return ultra.build_model(doc.plain(), scale or None, str(doc.path), seed=0)


def _child(variant: str, base: str, scale: str | None, imgsz: int, runs: int | None, formats: list[str]) -> None:
    import torch

    from attnsurgeon.checks.opt_in import run_extra_checks
    from attnsurgeon.costs.runtime_latency import deploy_format, time_deployed
    from attnsurgeon.errors import first_line

    model, base_model = _build(variant, scale), _build(base, scale)
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    for fmt in formats:
        emit(fmt, started=True)
        try:
            [check] = run_extra_checks(model, ["export" if fmt == "onnx" else f"export:{fmt}"], imgsz)
            ok, detail = check.ok, check.detail
        except Exception as exc:  # an exporter's or runtime's own exception is this cell's failure
            ok, detail = False, first_line(exc)
        if not ok:
            emit(fmt, check="skipped" if ok is None else "fail", reason=" ".join(str(detail).split()))
            continue
        try:
            mine = deploy_format(model, fmt, (imgsz, imgsz), weights=False)
            theirs = deploy_format(base_model, fmt, (imgsz, imgsz), weights=False)
            new, old = time_deployed([mine, theirs], x, runs=runs)
        except Exception as exc:
            emit(fmt, check="pass", reason=f"latency: {first_line(exc)}")
            continue
        emit(fmt, check="pass", ms=round(new.median, 4), ratio=round(new.median / old.median, 4))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m attnsurgeon.sweeps.format_cells", description=__doc__)
    parser.add_argument("variant")
    parser.add_argument("--base", required=True)
    parser.add_argument("--scale", default="")
    parser.add_argument("--imgsz", type=int, required=True)
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--formats", required=True)
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    try:
        _child(args.variant, args.base, args.scale or None, args.imgsz, args.runs or None, formats)
    except Exception as exc:  # the variant does not build here: every format says so
        for fmt in formats:
            emit(fmt, check="fail", reason=f"does not build in a fresh process: {' '.join(str(exc).split())}")


if __name__ == "__main__":
    main()
