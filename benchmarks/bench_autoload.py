"""Start-up cost of attnsurgeon's auto-registration hook (``attnsurgeon-autoload.pth``).

Times ``python -c pass`` in fresh processes, interleaved so drift hits every variant alike:

- ``-S``: no site module at all (no .pth file runs): the interpreter's floor;
- ``ATTNSURGEON_AUTOLOAD=0``: site runs, the .pth line only reads the variable;
- default: the .pth line puts a small finder on sys.meta_path (attnsurgeon is imported only with Ultralytics).

With ``--ultralytics`` it also times ``python -c "import ultralytics.nn.tasks"`` with the hook off and on: what the
registration itself costs in a process that does use Ultralytics.

    .venv/bin/python benchmarks/bench_autoload.py [--runs 200] [--ultralytics] [--python PATH] [--no-bytecode]

Child processes may write and use bytecode caches (``__pycache__``), as an installed package does (pip compiles
them at install time), even when ``PYTHONDONTWRITEBYTECODE`` is set here; ``--no-bytecode`` keeps that setting, so
every import compiles from source.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def run_once(python: str, args: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run([python, *args], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def bench(python: str, variants: dict[str, tuple[list[str], dict[str, str]]], runs: int, warmup: int) -> dict:
    cwd = tempfile.mkdtemp(prefix="bench-autoload-")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(warmup + runs):
        for name, (args, env) in variants.items():
            t = run_once(python, args, env, cwd)
            if i >= warmup:
                times[name].append(t)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str) -> None:
    print(f"\n{title}")
    base = statistics.median(times[baseline])
    print(f"  {'variant':<28}{'median ms':>10}{'q1 ms':>9}{'q3 ms':>9}{'  vs ' + baseline:>26}")
    for name, values in times.items():
        q1, med, q3 = quartiles(values)
        delta = (med - base) * 1000
        print(f"  {name:<28}{med * 1000:>10.2f}{q1 * 1000:>9.2f}{q3 * 1000:>9.2f}{delta:>+21.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--ultralytics", action="store_true", help="also time importing ultralytics.nn.tasks")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE for the children")
    opts = parser.parse_args()

    dropped = {"ATTNSURGEON_AUTOLOAD"} | (set() if opts.no_bytecode else {"PYTHONDONTWRITEBYTECODE"})
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    off = {**env, "ATTNSURGEON_AUTOLOAD": "0"}
    check = subprocess.run(
        [opts.python, "-c", "import sys; print(any(type(f).__name__ == 'AttnSurgeonAutoload' for f in sys.meta_path))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if check.stdout.strip() != "True":
        sys.exit("the hook is not installed in this interpreter (no attnsurgeon-autoload.pth); pip install -e . first")

    bytecode = "sources compiled on every import" if opts.no_bytecode else "bytecode caches used"
    print(f"python: {opts.python}; {opts.runs} interleaved runs per variant, {opts.warmup} warm-up rounds; {bytecode}")
    times = bench(
        opts.python,
        {
            "-S (no site)": (["-S", "-c", "pass"], env),
            "ATTNSURGEON_AUTOLOAD=0": (["-c", "pass"], off),
            "default (hook installed)": (["-c", "pass"], env),
        },
        opts.runs,
        opts.warmup,
    )
    report("python -c pass", times, "ATTNSURGEON_AUTOLOAD=0")
    diffs = [d - o for d, o in zip(times["default (hook installed)"], times["ATTNSURGEON_AUTOLOAD=0"], strict=True)]
    q1, med, q3 = quartiles(diffs)
    print(f"  paired difference default - off: median {med * 1000:+.3f} ms (q1 {q1 * 1000:+.3f}, q3 {q3 * 1000:+.3f})")

    # The same cost without process start-up noise: the .pth line timed inside fresh processes that started with the
    # hook off (so nothing of attnsurgeon is imported yet), then switched it on.
    pth = Path(sysconfig.get_paths()["purelib"]) / "attnsurgeon-autoload.pth"
    probe = (
        "import os, sys, time\n"
        f"line = open({str(pth)!r}).read()\n"
        "del os.environ['ATTNSURGEON_AUTOLOAD']\n"
        "t = time.perf_counter(); exec(line); t = time.perf_counter() - t\n"
        "assert any(type(f).__name__ == 'AttnSurgeonAutoload' for f in sys.meta_path)\n"
        "print(t)\n"
    )
    inside = []
    for _ in range(max(20, opts.runs // 4)):
        result = subprocess.run([opts.python, "-c", probe], env=off, capture_output=True, text=True, check=True)
        inside.append(float(result.stdout))
    q1, med, q3 = quartiles(inside)
    print(f"  the .pth line itself, timed in-process ({len(inside)} fresh processes): median {med * 1000:.3f} ms")
    print(f"  (q1 {q1 * 1000:.3f}, q3 {q3 * 1000:.3f}); with ATTNSURGEON_AUTOLOAD=0 it only reads the variable")

    if opts.ultralytics:
        runs = max(5, opts.runs // 20)
        times = bench(
            opts.python,
            {
                "ATTNSURGEON_AUTOLOAD=0": (["-c", "import ultralytics.nn.tasks"], off),
                "default (registers)": (["-c", "import ultralytics.nn.tasks"], env),
            },
            runs,
            1,
        )
        report(f"python -c 'import ultralytics.nn.tasks' ({runs} runs)", times, "ATTNSURGEON_AUTOLOAD=0")


if __name__ == "__main__":
    main()
