"""Wall-time figures for the editing commands without verification, measured as a user runs them.

Target: `remove`, `replace` and `insert` at named positions with `--no-verify` on yolo11n each < 0.3 s median (no
torch import). The input of `remove` and `replace` is yolo11n with SE after every C3k2 (8 layers), made once. The
first row, plain `insert --after 8`, is the reference the other rows compare with on a busy machine.

Usage: python benchmarks/bench_surgery.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_cli import CLI, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        edited = str(Path(tmp) / "yolo11n-SE.yaml")
        out = str(Path(tmp) / "out.yaml")
        wall([*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "every:C3k2", "--no-verify", "-o", edited], tmp)
        fast = {
            "reference: insert -a 8 --no-verify": [*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "8",
                                                   "--no-verify"],
            "insert -a heads -a p4,sppf --no-verify": [
                *CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "heads", "-a", "p4,sppf", "--no-verify",
            ],
            "insert -a every:C3k2 --no-verify": [*CLI, "insert", "yolo11n.yaml", "-m", "SE", "-a", "every:C3k2",
                                                 "--no-verify"],
            "remove --at every:SE --no-verify": [*CLI, "remove", edited, "--at", "every:SE", "--no-verify"],
            "remove --at 3 --no-verify": [*CLI, "remove", edited, "--at", "3", "--no-verify"],
            "replace --at every:SE -m CBAM --no-verify": [
                *CLI, "replace", edited, "--at", "every:SE", "-m", "CBAM", "--no-verify",
            ],
            "remove --at heads --dry-run --no-verify": [
                *CLI, "remove", edited, "--at", "heads", "--dry-run", "--no-verify",
            ],
        }  # fmt: skip
        print(f"{'command (yolo11n)':<46}{'median s':>10}{'min s':>8}{'target':>10}")
        for name, cmd in fast.items():
            full = [*cmd, "-o", out, "--force"] if "--dry-run" not in cmd else cmd
            wall(full, tmp)  # warm the file cache
            times = [wall(full, tmp) for _ in range(runs)]
            print(f"{name:<46}{statistics.median(times):>10.3f}{min(times):>8.3f}{'< 0.300':>10}")


if __name__ == "__main__":
    main()
