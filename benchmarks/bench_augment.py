"""Wall-time figures for ``attnsurgeon augment``, measured as a user runs the commands.

- ``augment --no-verify`` on yolo11n (indices, and ``every:C3k2``): target < 0.3 s median (no torch import); plain
  ``insert --after 8 --no-verify`` is the reference row, so the figures compare on a busy machine.
- ``augment`` with full verification of yolo11n at 640 (build base and new, "block kept", three forwards, a
  training step, params and GFLOPs) next to ``insert`` with full verification, each against the same bare script
  that imports Ultralytics, builds yolo11n and runs one 640x640 forward pass; timed alternately in the same run, so
  the augment/baseline ratio compares with insert's.

Usage: python benchmarks/bench_augment.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli import BASELINE, CLI, wall


def row(name: str, times: list[float], target: str = "") -> None:
    print(f"{name:<48}{statistics.median(times):>10.3f}{min(times):>8.3f}{target:>10}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "yolo11n-out.yaml")
        augment = [*CLI, "augment", "yolo11n.yaml", "-m", "EMA", "--at", "2", "--at", "6", "--args", "[8]"]
        fast = {
            "reference: insert -a 8 --no-verify": [*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "8",
                                                   "--no-verify"],
            "augment --at 2 --at 6 --no-verify": [*augment, "--no-verify"],
            "augment --at every:C3k2 --no-verify": [*CLI, "augment", "yolo11n.yaml", "-m", "EMA", "--at",
                                                    "every:C3k2", "--no-verify"],
        }  # fmt: skip
        print(f"{'command (yolo11n)':<48}{'median s':>10}{'min s':>8}{'target':>10}")
        for name, cmd in fast.items():
            full = [*cmd, "-o", out, "--force"]
            wall(full, tmp)  # warm the file cache
            row(name, [wall(full, tmp) for _ in range(runs)], "< 0.300")
        verified = [*augment, "-o", out, "--force"]
        inserted = [*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", out, "--force"]
        base_cmd = [sys.executable, "-c", BASELINE]
        wall(base_cmd, tmp)
        measured: dict[str, list[float]] = {"augment": [], "insert": [], "baseline": []}
        for _ in range(max(3, runs // 2)):
            measured["baseline"].append(wall(base_cmd, tmp))
            measured["augment"].append(wall(verified, tmp))
            measured["insert"].append(wall(inserted, tmp))
        row("augment with verification (yolo11n, 640)", measured["augment"])
        row("insert with verification (yolo11n, 640)", measured["insert"])
        row("baseline: import+build+forward 640", measured["baseline"])
        medians = {k: statistics.median(v) for k, v in measured.items()}
        print(f"{'ratio augment / baseline':<48}{medians['augment'] / medians['baseline']:>10.2f}")
        print(f"{'ratio insert / baseline':<48}{medians['insert'] / medians['baseline']:>10.2f}")


if __name__ == "__main__":
    main()
