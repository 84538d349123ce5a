"""``insert --no-verify`` on a flow-style file against the same edit on the block-style file (target: within 1.1x).

Two figures, each timed alternately so a busy machine slows both alike: the whole command as a user runs it (a fresh
process each time: start-up, load, surgery, write), and the edit alone in one process (``api.insert`` with
``verify=False, write=False``: load, surgery, output text), on yolo11n and on its rows written in flow style.

Usage: PYTHONPATH=. python benchmarks/bench_flow.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from flow_fixtures import to_flow

from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ops import surgery as api

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "ATTNSURGEON_AUTOLOAD": "0"}


def cli(path: Path, tmp: str) -> float:
    cmd = [sys.executable, "-m", "attnsurgeon", "insert", str(path), "-m", "CBAM", "--after", "8", "--no-verify",
           "--force", "-o", str(Path(tmp) / "out.yaml")]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=tmp)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - start


def in_process(path: Path) -> float:
    start = time.perf_counter()
    api.insert(str(path), "CBAM", after=[8], verify=False, write=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    text = (model_doc.packaged_models_dir() / "11" / "yolo11.yaml").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        block, flow = Path(tmp) / "yolo11n.yaml", Path(tmp) / "yolo11n-flow.yaml"
        block.write_text(text, encoding="utf-8")
        flow.write_text(to_flow(text), encoding="utf-8")
        for name, fn in (("whole command (s)", lambda p: cli(p, tmp)), ("edit in one process (s)", in_process)):
            fn(block), fn(flow)  # warm caches
            times: dict[str, list[float]] = {"block": [], "flow": []}
            for _ in range(runs):
                times["block"].append(fn(block))
                times["flow"].append(fn(flow))
            b, f = statistics.median(times["block"]), statistics.median(times["flow"])
            print(f"{name:<26} block {b:.4f}  flow {f:.4f}  flow/block {f / b:.3f}  (median of {runs})")


if __name__ == "__main__":
    main()
