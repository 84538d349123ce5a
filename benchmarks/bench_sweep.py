"""``attnsurgeon sweep``, cost only: is a variant no dearer than building the model and running it once?

In one warm process: a cost-only sweep of the full catalog at one position on yolo11n (default settings: layer
checks, delta latency), in a fresh directory. Target: wall time / variants (the base row included) at most 1.5x the
reference, the median time to build yolo11n and run one 640x640 forward in the same warm process (measured before
and after the sweep, so drift in machine load hits both). Also prints where the time goes, per stage.

    .venv/bin/python benchmarks/bench_sweep.py [--model yolo11n.yaml] [--at 8] [--modules all] [--device cpu]
        [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = (  # (module, function, stage): the parts of a variant's cost that take time
    ("attnsurgeon.sweeps.cost", "cost_base", "base: build + profile (once)"),
    ("attnsurgeon.core.yamlfile.model_doc", "load", "YAML load"),
    ("attnsurgeon.core.yamlfile.tree_edits", "apply", "YAML surgery"),
    ("attnsurgeon.core.yamlfile.text_writer", "surgery_text", "YAML text"),
    ("attnsurgeon.core.publish", "publish_all", "writes (YAML, results)"),
    ("attnsurgeon.ultralytics_bridge.ultra", "build_model", "build (Ultralytics)"),
    ("attnsurgeon.sweeps.cost", "layer_checks", "checks (new layer alone)"),
    ("attnsurgeon.costs.flops", "ultralytics_gflops", "GFLOPs (Ultralytics get_flops)"),
    ("attnsurgeon.sweeps.cost", "_layer_flops", "exact FLOPs (new layer)"),
    ("attnsurgeon.sweeps.cost", "_layer_ms", "latency (new layer timed)"),
    ("attnsurgeon.ultralytics_bridge.ultra", "fuse_layer", "fuse (new layer)"),
)


def instrument(spent: dict[str, float], calls: dict[str, int]) -> None:
    import importlib

    depth: dict[str, int] = defaultdict(int)  # build_model(seed=...) calls itself: count the outer call only
    for module_name, function, stage in STAGES:
        module = importlib.import_module(module_name)
        original = getattr(module, function)

        @functools.wraps(original)
        def timed(*args, _original=original, _stage=stage, **kwargs):
            depth[_stage] += 1
            t0 = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                depth[_stage] -= 1
                if not depth[_stage]:
                    spent[_stage] += time.perf_counter() - t0
                    calls[_stage] += 1

        setattr(module, function, timed)


def reference_s(model: str, repeat: int = 5) -> float:
    """Median seconds to build the model and run one 640x640 forward (warm process)."""
    import torch

    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.ultralytics_bridge import ultra

    doc = model_doc.load(model)
    cfg = doc.plain()
    x = torch.rand(1, 3, 640, 640)
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        built = ultra.build_model(cfg, doc.scale or None, f"{doc.stem}.yaml").eval()
        with torch.inference_mode():
            built(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])  # the first is the warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolo11n.yaml")
    parser.add_argument("--at", default="8")
    parser.add_argument("--modules", default="all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=None, help="timed runs of the base (default: as profile)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from attnsurgeon.sweeps import runner as sweeper

    before = reference_s(args.model)
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    instrument(spent, calls)
    with tempfile.TemporaryDirectory() as tmp:
        job = sweeper.start(args.model, args.modules, args.at, Path(tmp) / "sweep", device=args.device, runs=args.runs)
        t0 = time.perf_counter()
        sweeper.run(job)
        wall = time.perf_counter() - t0
        rows = job.rows()
    after = reference_s(args.model)
    reference = statistics.median([before, after])
    per_variant = wall / len(rows)
    ratio = per_variant / reference
    failed = [r["name"] for r in rows if r["status"] != "ok"]
    result = {
        "model": args.model,
        "at": args.at,
        "variants": len(rows),
        "failed": failed,
        "threads": torch.get_num_threads(),
        "base_runs": args.runs,
        "wall_s": round(wall, 3),
        "per_variant_s": round(per_variant, 4),
        "reference_s": round(reference, 4),
        "reference_before_after_s": [round(before, 4), round(after, 4)],
        "ratio": round(ratio, 3),
        "target": 1.5,
        "ok": ratio <= 1.5,
        "stages_s": {k: round(v, 3) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(rows)} rows ({len(failed)} failed) in {wall:.2f} s: {per_variant * 1e3:.0f} ms per variant")
    print(f"reference (build {args.model} + one 640 forward): {reference * 1e3:.0f} ms "
          f"(before {before * 1e3:.0f}, after {after * 1e3:.0f})")  # fmt: skip
    print(f"ratio {ratio:.2f} (target <= 1.5): {'OK' if ratio <= 1.5 else 'OVER'}")
    once = spent.get("base: build + profile (once)", 0.0)
    print(f"without the base's one-off profile: {(wall - once) / (len(rows) - 1) / reference:.2f}")
    # What no variant can skip: Ultralytics building it and Ultralytics' own get_flops on it (the GFLOPs users compare
    # with model.info()), averaged over every call (the base's included).
    floor = sum(
        spent.get(k, 0.0) / max(calls.get(k, 0), 1) for k in ("build (Ultralytics)", "GFLOPs (Ultralytics get_flops)")
    )
    print(
        f"floor per variant (Ultralytics build + get_flops): {floor * 1e3:.0f} ms = "
        f"{floor / reference:.2f}x the reference"
    )
    other = wall - sum(spent.values())  # the base's own build and GFLOPs are counted twice: a small underestimate
    for stage, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:<34} {seconds:7.2f} s  {seconds / wall * 100:5.1f}%  {seconds / len(rows) * 1e3:6.0f} ms/row")
    print(f"  {'other (not instrumented)':<34} {other:7.2f} s")


if __name__ == "__main__":
    main()
