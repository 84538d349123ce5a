"""Wall-time figures for the insert loop (issue: speed targets), measured as a user runs the commands.

- `attnsurgeon --help` and `insert --no-verify` on yolo11n: target < 0.3 s median each (no torch import).
- `attnsurgeon list`: target < 0.5 s median (costs read from the cache the first run fills).
- `insert` with full verification of yolo11n at 640: target <= 1.6x a plain script that imports ultralytics,
  builds yolo11n and runs one 640x640 forward pass, timed alternately in the same run.

Usage: python benchmarks/bench_cli.py [--runs N]
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

BIN = Path(sys.executable).parent
CLI = [str(BIN / "attnsurgeon")] if (BIN / "attnsurgeon").exists() else [sys.executable, "-m", "attnsurgeon"]
BASELINE = """
import torch
from ultralytics import YOLO
model = YOLO("yolo11n.yaml").model.eval()
with torch.inference_mode():
    model(torch.zeros(1, 3, 640, 640))
"""


# As on a user's machine: Python writes and reads bytecode caches (pip compiles an installed package; an editable one
# gets them on first import). PYTHONDONTWRITEBYTECODE, set in some CI and sandbox shells, would make every run compile
# every attnsurgeon module again (~0.1 s) and measure that instead.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "YOLO_OFFLINE": "1"}


def wall(cmd: list[str], cwd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.yaml")
        insert_fast = [*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify", "-o", out, "--force"]
        fast = {
            # the floor: the interpreter importing the CLI stack (Typer, Rich, ruamel.yaml), nothing of attnsurgeon
            "floor: python -c 'import typer, rich, ruamel'": (
                [sys.executable, "-c", "import typer, rich.console, rich.table, ruamel.yaml"],
                "",
            ),
            "attnsurgeon --help": ([*CLI, "--help"], "< 0.300"),
            "insert --no-verify (yolo11n)": (insert_fast, "< 0.300"),
            # the first list fills the cost cache (~/.cache/attnsurgeon); the timed runs read it
            "attnsurgeon list (cost cache warm)": ([*CLI, "list"], "< 0.500"),
        }
        wall([*CLI, "--help"], tmp)  # warm the file cache
        print(f"{'command':<44}{'median s':>10}{'min s':>8}{'target':>10}")
        wall([*CLI, "list"], tmp)
        for name, (cmd, target) in fast.items():
            times = [wall(cmd, tmp) for _ in range(runs)]
            print(f"{name:<44}{statistics.median(times):>10.3f}{min(times):>8.3f}{target:>10}")
        verify_cmd = [*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", out, "--force"]
        base_cmd = [sys.executable, "-c", BASELINE]
        wall(base_cmd, tmp)
        full, base = [], []
        for _ in range(max(3, runs // 2)):
            base.append(wall(base_cmd, tmp))
            full.append(wall(verify_cmd, tmp))
        mf, mb = statistics.median(full), statistics.median(base)
        print(f"{'insert with verification (yolo11n, 640)':<44}{mf:>10.3f}{min(full):>8.3f}")
        print(f"{'baseline: import+build+forward 640':<44}{mb:>10.3f}{min(base):>8.3f}")
        print(f"{'ratio verify / baseline':<44}{mf / mb:>10.2f}{'':>8}{'<= 1.60':>10}")


if __name__ == "__main__":
    main()
