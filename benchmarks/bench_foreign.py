"""Wall time of ``insert -m FILE.py:Class`` against ``insert -m`` the catalog twin, verified, as a user runs them
(issue 28: goal <= 1.3x). The plain class is a CBAM written as public collections write it (a ``channel``
argument, its own conv layers); the twin is the catalog's CBAM. The two commands are timed alternately in one run,
each in a fresh process, so both pay the same start-up; the probe (the module contract on the class before the
model is built) is what the plain class costs more.

Usage: python benchmarks/bench_foreign.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CLI = [str(BIN / "attnsurgeon")] if (BIN / "attnsurgeon").exists() else [sys.executable, "-m", "attnsurgeon"]
CBAM_FILE = """
import torch
from torch import nn


class CBAMBlock(nn.Module):
    def __init__(self, channel=512, reduction=16, kernel_size=7):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1, bias=False), nn.ReLU(),
            nn.Conv2d(channel // reduction, channel, 1, bias=False),
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        x = x * torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))
"""


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "cbam_block.py").write_text(CBAM_FILE)
        common = ["insert", "yolo11n.yaml", "--after", "8", "--force"]
        plain = [*CLI, *common, "-m", "cbam_block.py:CBAMBlock", "-o", "plain-n.yaml"]
        twin = [*CLI, *common, "-m", "CBAM", "-o", "twin-n.yaml"]
        timed(twin, folder)  # warm the start-up caches
        times: dict[str, list[float]] = {"plain": [], "twin": []}
        for _ in range(runs):
            times["plain"].append(timed(plain, folder))
            times["twin"].append(timed(twin, folder))
    p, t = statistics.median(times["plain"]), statistics.median(times["twin"])
    print(f"insert -m cbam_block.py:CBAMBlock (verified): median {p:.2f} s over {runs} runs")
    print(f"insert -m CBAM (catalog twin, verified):      median {t:.2f} s over {runs} runs")
    print(f"ratio {p / t:.2f}x (goal <= 1.3x)")


if __name__ == "__main__":
    main()
