"""Deployment matrix (issue 30): every catalog module inserted after layer 8 of yolo11n, checked and timed in every
format attnsurgeon exports (ONNX, TorchScript, OpenVINO, NCNN).

Per module and format: pass/fail of ``--checks export:FORMAT`` (the ONNX column is the landed ``export`` check), the
worst relative error a passing check reports, and the deployed latency (Ultralytics' export in its runtime through
AutoBackend, ``profile --format``) as a ratio to yolo11n's in the same format, both timed interleaved. Rows are
appended to the Markdown file as they finish, so a long run can be read while it goes; the header names the date, the
versions and the CPU.

Each module runs in its own process, which reports one JSON line per format as it finishes it: a runtime that dies
natively (a segfault in NCNN) is one cell, ``crashed: signal N``, and a fresh process carries on with the module's
remaining formats; a cell past ``--cell-timeout`` seconds is ``timed out``. Neither ends the run (the children are
run as ``sweep --formats`` runs a variant's, :mod:`attnsurgeon.sweeps.format_cells`).

    python benchmarks/deploy_matrix.py --imgsz 320 --runs 10 -o deploy_matrix.md [--modules SE,CBAM] [--formats ...]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FORMATS = ("onnx", "torchscript", "openvino", "ncnn")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _cpu() -> str:
    import torch

    from attnsurgeon.costs.timing import device_name

    return f"{device_name(torch.device('cpu'))}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def one_line(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def cells(name: str, formats: list[str], imgsz: int, runs: int) -> None:
    """The child: one JSON line per format of module ``name`` on stdout (fd 1 is shared with native code, so the
    lines are marked)."""
    import torch

    from attnsurgeon.checks.onnx_export import worst_of
    from attnsurgeon.checks.opt_in import run_extra_checks
    from attnsurgeon.costs.runtime_latency import deploy_format, time_deployed
    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ops.profile import load_model
    from attnsurgeon.sweeps.format_cells import emit

    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(tmp) / f"yolo11n-{name}.yaml"
            api.insert("yolo11n.yaml", name, 8, output=path, verify=False)
            model = load_model(path).model
            base = load_model("yolo11n.yaml").model
        except Exception as exc:
            for fmt in formats:
                emit(fmt, mark="build fails", detail=one_line(f"does not build: {exc}"))
            return
        for fmt in formats:
            check_name = "export" if fmt == "onnx" else f"export:{fmt}"
            emit(fmt, started=True)
            try:
                [check] = run_extra_checks(model, [check_name], imgsz)
                ok, detail = check.ok, check.detail
            except Exception as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            ratio = "-"
            try:
                mine = deploy_format(model, fmt, (imgsz, imgsz), weights=False)
                theirs = deploy_format(base, fmt, (imgsz, imgsz), weights=False)
                new, old = time_deployed([mine, theirs], x, runs=runs, warmup=2)
                ratio = f"{new.median / old.median:.2f}"
            except Exception as exc:
                detail += f"; latency: {type(exc).__name__}: {exc}"
            mark = "pass" if ok else ("skipped" if ok is None else "FAIL")
            worst = worst_of(detail) if ok else None
            emit(fmt, mark=mark, worst="-" if worst is None else f"{worst:.2g}", ratio=ratio, detail=one_line(detail))


def run_module(name: str, formats: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The cells of one module, each format in a child process until one dies; then a fresh one for the rest
    (:func:`attnsurgeon.sweeps.format_cells.run_cells`, as ``sweep --formats`` runs a variant's)."""
    from attnsurgeon.sweeps.format_cells import run_cells

    def command(todo: list[str]) -> list[str]:
        return [sys.executable, __file__, "--cell", name, "--formats", ",".join(todo),
                "--imgsz", str(args.imgsz), "--runs", str(args.runs)]  # fmt: skip

    done = run_cells(command, formats, args.cell_timeout)
    for fmt, cell in done.items():
        if "lost" in cell:
            done[fmt] = {"format": fmt, "mark": cell["lost"], "worst": "-", "ratio": "-", "detail": cell["lost"]}
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--modules", default="", help="comma-separated; default: the whole catalog")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds one module x format may take")
    parser.add_argument("-o", "--output", default="deploy_matrix.md")
    parser.add_argument("--cell", default="", help=argparse.SUPPRESS)  # the child process: one module
    args = parser.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if args.cell:
        cells(args.cell, formats, args.imgsz, args.runs)
        return 0

    from attnsurgeon.catalog import REGISTRY

    modules = [m for m in args.modules.split(",") if m] or sorted(REGISTRY.names())
    out = Path(args.output)
    versions = ", ".join(
        f"{p} {_version(p)}" for p in ("ultralytics", "torch", "onnxruntime", "openvino", "ncnn", "pnnx")
    )
    header = [
        f"# Deployment matrix: {len(modules)} modules after layer 8 of yolo11n, imgsz {args.imgsz}",
        "",
        f"{datetime.date.today().isoformat()} · {versions} · Python {platform.python_version()} · CPU: {_cpu()}",
        f"Latency: {args.runs} timed runs per model, interleaved with yolo11n's in the same format; "
        "ratio = module / base. Each module in its own process; a native crash is one cell.",
        "",
        "| module | " + " | ".join(f"{f} check | {f} worst rel. err | {f} latency ratio" for f in formats) + " |",
        "|---|" + "---|" * (3 * len(formats)),
    ]
    out.write_text("\n".join(header) + "\n")
    failures: list[str] = []
    passes = dict.fromkeys(formats, 0)
    for name in modules:
        started = time.perf_counter()
        found = run_module(name, formats, args)
        row: list[str] = []
        for fmt in formats:
            cell = found[fmt]
            row += [cell["mark"], cell.get("worst", "-"), cell.get("ratio", "-")]
            if cell["mark"] == "pass":
                passes[fmt] += 1
            if cell["mark"] != "pass" or "latency:" in cell.get("detail", ""):
                failures.append(f"{name} / {fmt}: {cell['detail']}")
        with out.open("a") as f:
            f.write(f"| {name} | " + " | ".join(row) + " |\n")
        print(f"{name}: {' '.join(row)} ({time.perf_counter() - started:.0f} s)", flush=True)
        for fmt in formats:  # the reasons now, not only in the file's last section
            if found[fmt]["mark"] != "pass":
                print(f"  {fmt}: {found[fmt]['detail']}", flush=True)
    with out.open("a") as f:
        f.write("\nPasses: " + ", ".join(f"{fmt} {n}/{len(modules)}" for fmt, n in passes.items()) + "\n")
        f.write("\n## Failures\n\n" + ("\n".join(f"- {line}" for line in failures) or "none") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
