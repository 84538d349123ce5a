"""Does ``profile --format openvino`` time what OpenVINO itself measures? (issue 30)

One run: ``attnsurgeon.profile_model([VARIANT, yolo11n.yaml], format="openvino")`` (Ultralytics' export, loaded
through ``AutoBackend``, the two models timed interleaved), then OpenVINO's own ``benchmark_app`` on the very same
exported files (the export cache), in the same mode AutoBackend compiles them (``-hint latency``, synchronous, one
request), and a plain timing loop over ``core.compile_model`` as a second, dependency-free reference. Prints the
medians and the gap of each; the claim is that attnsurgeon's figure agrees within 10 %.

    python benchmarks/openvino_agreement.py [--module CBAM] [--imgsz 640] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOLERANCE = 0.10


def _benchmark_app(xml: Path, runs: int, report: Path) -> float:
    """The median latency (ms) ``benchmark_app`` reports for ``xml``."""
    report.mkdir(parents=True, exist_ok=True)  # benchmark_app writes its report there and does not make the folder
    app = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    command = [app, "-m", str(xml), "-d", "CPU", "-hint", "latency", "-api", "sync", "-nireq", "1",
               "-niter", str(runs), "-report_type", "no_counters",
               "-report_folder", str(report)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1200).stdout
    found = re.search(r"Median:\s+([0-9.]+) ms", out)
    if found is None:
        raise RuntimeError(f"benchmark_app printed no median:\n{out[-2000:]}")
    return float(found.group(1))


def _plain_loop(xml: Path, imgsz: int, runs: int) -> float:
    """The median of a plain loop over the compiled model, compiled as AutoBackend compiles it (latency hint)."""
    import numpy as np
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    for _ in range(5):
        request.infer([x])
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        request.infer([x])
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default="CBAM")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    import attnsurgeon

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        variant = Path(tmp) / f"yolo11n-{args.module}.yaml"
        attnsurgeon.insert("yolo11n.yaml", args.module, after=8, output=variant, verify=False)
        reports = attnsurgeon.profile_model(
            [str(variant), "yolo11n.yaml"], imgsz=args.imgsz, runs=args.runs, format="openvino"
        )
        for report in reports:
            xml = next(Path(report.exported.path).glob("*.xml"))
            ours = report.exported_latency.median
            app = _benchmark_app(xml, args.runs, Path(tmp) / "report")
            loop = _plain_loop(xml, args.imgsz, args.runs)
            rows.append({"model": report.model, "attnsurgeon_ms": round(ours, 2), "benchmark_app_ms": round(app, 2),
                         "plain_loop_ms": round(loop, 2), "gap_benchmark_app": round(ours / app - 1, 4),
                         "gap_plain_loop": round(ours / loop - 1, 4), "threads": report.exported.threads,
                         "precision": report.exported.precision})  # fmt: skip
    for row in rows:
        print(json.dumps(row))
    worst = max(abs(r["gap_benchmark_app"]) for r in rows)
    print(f"worst gap to benchmark_app: {worst:.1%} ({'within' if worst <= TOLERANCE else 'OUTSIDE'} {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
