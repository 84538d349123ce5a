"""Wall time of ``attnsurgeon cam`` on 4 images at 640 on CPU against two plain Ultralytics predicts of the same
images (target: cam within 3x).

Both sides start from the files: the reference loads BASE.pt and VARIANT.pt with ``YOLO(path)`` and runs
``predict(images, imgsz=640)`` on each; cam loads both, letterboxes as predict does (640x480 stays 640x480), and per
model runs one forward pass over the 4 images (the targets come from its output) and, for gradcam and layercam, one
backward pass from the scores to the first target layer; then it writes 5 PNGs. yolo11n (seeded random weights) and
its CBAM-after-8 variant; timed alternately, median of ``--runs``.

Usage: python benchmarks/bench_cam.py [--runs N] [--threads T]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    opts = parser.parse_args()
    import numpy as np
    import torch
    from PIL import Image
    from ultralytics import YOLO

    from attnsurgeon.figures.cam import cam
    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    if opts.threads:
        torch.set_num_threads(opts.threads)
    ultra.register()
    root = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    with ultra.quiet():
        YOLO("yolo11n.yaml").save(root / "base.pt")
    api.insert_checkpoint(root / "base.pt", "CBAM", after=8, output=root / "var.pt", verify=False)
    rng = np.random.default_rng(0)
    images = []
    for i in range(4):
        images.append(root / f"im{i}.jpg")
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(images[-1])

    def predicts() -> None:
        for path in (root / "base.pt", root / "var.pt"):
            YOLO(path).predict([str(p) for p in images], imgsz=640, device="cpu", verbose=False)

    def run_cam(method: str) -> None:
        cam(root / "base.pt", root / "var.pt", images, root / f"out-{method}", method=method, force=True)

    jobs = {"2x predict (reference)": predicts, **{f"cam {m}": (lambda m=m: run_cam(m)) for m in
                                                   ("gradcam", "eigencam", "layercam")}}  # fmt: skip
    for job in jobs.values():  # warm-up: imports, first-call allocations
        job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(opts.runs):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["2x predict (reference)"])
    print(f"torch threads {torch.get_num_threads()}, 4 images 640x480 -> 640, median of {opts.runs}")
    print(f"{'':<26}{'median s':>10}{'min s':>8}{'x ref':>8}")
    for name, t in times.items():
        print(f"{name:<26}{statistics.median(t):>10.3f}{min(t):>8.3f}{statistics.median(t) / ref:>8.2f}")


if __name__ == "__main__":
    main()
