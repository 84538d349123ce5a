"""Deployment matrix (issue 30): every catalog module inserted after layer 8 of yolo11n, checked and timed in every
format attnsurgeon exports (ONNX, TorchScript, OpenVINO, NCNN).

Per module and format: pass/fail of ``--checks export:FORMAT`` (the ONNX column is the landed ``export`` check), the
worst relative error a passing check reports, and the deployed latency (Ultralytics' export in its runtime through
AutoBackend, ``profile --format``) as a ratio to yolo11n's in the same format, both timed interleaved. Rows are
appended to the Markdown file as they finish, so a long run can be read while it goes; the header names the date, the
versions and the CPU.

    python benchmarks/deploy_matrix.py --imgsz 320 --runs 10 -o deploy_matrix.md [--modules SE,CBAM] [--formats ...]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

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


def _worst(detail: str) -> str:
    found = re.search(r"worst \|Δ\| ([0-9.e+-]+)", detail) or re.search(r"max \|Δ\| ([0-9.e+-]+)", detail)
    return found.group(1) if found else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--modules", default="", help="comma-separated; default: the whole catalog")
    parser.add_argument("-o", "--output", default="deploy_matrix.md")
    args = parser.parse_args()

    import torch

    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.checks.deploy import run_extra_checks
    from attnsurgeon.costs.deployed import deploy_format, time_deployed
    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ops.profile import load_model

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
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
        "ratio = module / base.",
        "",
        "| module | " + " | ".join(f"{f} check | {f} worst rel. err | {f} latency ratio" for f in formats) + " |",
        "|---|" + "---|" * (3 * len(formats)),
    ]
    out.write_text("\n".join(header) + "\n")
    x = torch.rand(1, 3, args.imgsz, args.imgsz, generator=torch.Generator().manual_seed(0))
    base = load_model("yolo11n.yaml").model
    base_deployed = {fmt: deploy_format(base, fmt, (args.imgsz, args.imgsz), weights=False) for fmt in formats}
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in modules:
            started = time.perf_counter()
            cells: list[str] = []
            try:
                path = Path(tmp) / f"yolo11n-{name}.yaml"
                api.insert("yolo11n.yaml", name, 8, output=path, verify=False)
                model = load_model(path).model
            except Exception as exc:
                failures.append(f"{name}: does not build: {exc}")
                out.open("a").write(f"| {name} | " + " | ".join(["build fails"] * 3 * len(formats)) + " |\n")
                continue
            for fmt in formats:
                check_name = "export" if fmt == "onnx" else f"export:{fmt}"
                try:
                    [check] = run_extra_checks(model, [check_name], args.imgsz)
                    ok, detail = check.ok, check.detail
                except Exception as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                ratio = "-"
                try:
                    mine = deploy_format(model, fmt, (args.imgsz, args.imgsz), weights=False)
                    new, old = time_deployed([mine, base_deployed[fmt]], x, runs=args.runs, warmup=2)
                    ratio = f"{new.median / old.median:.2f}"
                except Exception as exc:
                    detail += f"; latency: {type(exc).__name__}: {str(exc)[:120]}"
                mark = "pass" if ok else ("skipped" if ok is None else "FAIL")
                if not ok:
                    failures.append(f"{name} / {fmt}: {detail}")
                cells += [mark, _worst(detail) if ok else "-", ratio]
            out.open("a").write(f"| {name} | " + " | ".join(cells) + " |\n")
            print(f"{name}: {' '.join(cells)} ({time.perf_counter() - started:.0f} s)", flush=True)
    with out.open("a") as f:
        f.write("\n## Failures\n\n" + ("\n".join(f"- {line}" for line in failures) or "none") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
