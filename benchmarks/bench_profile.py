"""``attnsurgeon profile``: how long it takes, and whether its latency agrees with ``torch.utils.benchmark``.

1. Wall time of ``attnsurgeon profile MODEL`` with default settings, as a user runs it (a fresh process: imports,
   build, GFLOPs, exact FLOPs, fuse, warm-up, timing). Target for yolo11n on CPU: under 15 s.
2. In one process: ``attnsurgeon.ops.profile.profile(MODEL)`` with default settings, then a separate
   ``torch.utils.benchmark.Timer`` measurement of the same fused model (the report's ``deployed``) on the same input
   with the same thread count. Target: the two medians agree within 10%. The pair is repeated ``--pairs`` times and
   the median disagreement is the verdict (each pair's figures are printed: on a shared machine a burst of load
   during one window and not the other moves a single pair).

    .venv/bin/python benchmarks/bench_profile.py [--model yolo11n.yaml] [--device cpu] [--repeat 2] [--pairs 3]
        [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def cli_wall_times(model: str, device: str, repeat: int) -> list[float]:
    exe = Path(sys.executable).with_name("attnsurgeon")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "attnsurgeon"]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "profile", model, "--device", device], capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode:
            raise SystemExit(f"attnsurgeon profile failed ({proc.returncode}): {proc.stderr.strip()}")
    return times


def timer_median_ms(model, x, threads: int, min_run_time: float) -> tuple[float, int]:
    import torch
    from torch.utils import benchmark

    timer = benchmark.Timer(
        stmt="with torch.inference_mode():\n    model(x)",
        globals={"model": model, "x": x, "torch": torch},
        num_threads=threads,
        label="fused model forward",
    )
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    m = timer.blocked_autorange(min_run_time=min_run_time)
    return m.median * 1e3, len(m.times) * m.number_per_run


def agreement(model: str, device: str, pairs: int, min_run_time: float) -> list[dict]:
    import torch

    from attnsurgeon.ops import profile

    rows = []
    for _ in range(pairs):
        t0 = time.perf_counter()
        report = profile.profile(model, device=device)[0]  # default settings, as the CLI runs it
        wall = time.perf_counter() - t0
        bench_ms, bench_runs = timer_median_ms(report.deployed, report.inputs, report.threads, min_run_time)
        prof_ms = report.latency.median
        rows.append(
            {
                "profile_median_ms": round(prof_ms, 3),
                "profile_p90_ms": round(report.latency.p90, 3),
                "profile_runs": report.latency.runs,
                "benchmark_median_ms": round(bench_ms, 3),
                "benchmark_runs": bench_runs,
                "rel_diff": round((prof_ms - bench_ms) / bench_ms, 4),
                "threads": torch.get_num_threads(),
                "profile_wall_s": round(wall, 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolo11n.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=2, help="CLI wall-time repetitions")
    parser.add_argument("--pairs", type=int, default=3, help="profile vs torch.utils.benchmark pairs")
    parser.add_argument("--min-run-time", type=float, default=4.0, help="torch.utils.benchmark min_run_time (s)")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for both (OMP_NUM_THREADS); default: torch's own choice"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the CLI subprocess inherits it
        import torch

        torch.set_num_threads(args.threads)

    walls = cli_wall_times(args.model, args.device, args.repeat) if args.repeat else []
    rows = agreement(args.model, args.device, args.pairs, args.min_run_time)
    worst = max((abs(r["rel_diff"]) for r in rows), default=0.0)
    typical = statistics.median(abs(r["rel_diff"]) for r in rows) if rows else 0.0
    summary = {
        "model": args.model,
        "device": args.device,
        "cli_wall_s": [round(w, 2) for w in walls],
        "cli_wall_median_s": round(statistics.median(walls), 2) if walls else None,
        "cli_under_15s": all(w < 15 for w in walls) if walls else None,
        "pairs": rows,
        "max_abs_rel_diff": worst,
        "median_abs_rel_diff": typical,
        "agree_within_10pct": typical <= 0.10,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    if walls:
        walls_text = ", ".join(f"{w:.2f}" for w in walls)
        print(f"attnsurgeon profile {args.model} --device {args.device}: wall {walls_text} s (target < 15 s)")
    for r in rows:
        print(
            f"profile median {r['profile_median_ms']:.2f} ms ({r['profile_runs']} runs)  "
            f"torch.utils.benchmark median {r['benchmark_median_ms']:.2f} ms ({r['benchmark_runs']} runs)  "
            f"diff {r['rel_diff'] * 100:+.1f}%  threads {r['threads']}"
        )
    print(
        f"disagreement: median over pairs {typical * 100:.1f}%, largest {worst * 100:.1f}% (target <= 10%); "
        f"load average {summary['load_average']} on {summary['cpus']} CPUs"
    )


if __name__ == "__main__":
    main()
