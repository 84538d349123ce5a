"""`attnsurgeon sweep --train`: every variant trained by Ultralytics on a tiny synthetic dataset (CPU, offline), the
metrics read back, reruns that skip, a killed sweep completed by a rerun, and the same sweep as Ray Tune trials."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()
TRAIN = ["--imgsz", "64", "--runs", "5", "--epochs", "1", "--batch", "8"]
TRAIN_COLUMNS = ("mAP50", "mAP50-95", "precision", "recall", "train_s")


def make_dataset(root: Path, n_train: int = 24, n_val: int = 8, size: int = 64) -> Path:
    """Dark images with red squares (class 0) and green bars (class 1), labels in Ultralytics' YOLO format."""
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img = Image.new("RGB", (size, size), tuple(rng.randrange(0, 60) for _ in range(3)))
            draw = ImageDraw.Draw(img)
            lines = []
            for _ in range(rng.randint(1, 3)):
                cls = rng.randrange(2)
                w = rng.randint(10, 28)
                h = w if cls == 0 else max(6, w // 3)
                x0, y0 = rng.randint(0, size - w - 1), rng.randint(0, size - h - 1)
                draw.rectangle([x0, y0, x0 + w, y0 + h], fill=(230, 40, 40) if cls == 0 else (40, 230, 40))
                lines.append(f"{cls} {(x0 + w / 2) / size:.6f} {(y0 + h / 2) / size:.6f} {w / size:.6f} {h / size:.6f}")
            img.save(root / "images" / split / f"{i:03d}.jpg")
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: square\n  1: bar\n")
    return data


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "out"
    args = ["sweep", "yolo11n.yaml", "-m", "SE,CBAM,EMA", "--at", "8,16", "-o", str(out), "--train", str(dataset)]
    result = runner.invoke(app, [*args, *TRAIN])
    return out, result, args


def rows_of(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


def test_every_variant_trains_and_fills_every_column(trained):
    out, result, _ = trained
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert len(rows) == 7 and all(r["status"] == "ok" and r["train_status"] == "ok" for r in rows)
    for r in rows:
        for column in ("params", "gflops", "gflops_exact", "latency_ms", *TRAIN_COLUMNS):
            assert isinstance(r[column], (int, float)), (r["name"], column)
        assert 0 <= r["mAP50-95"] <= r["mAP50"] <= 1 and r["train_s"] > 0
        run_dir = out / r["run_dir"]
        assert r["run_dir"] == f"runs/{r['name']}" and (run_dir / "results.csv").is_file()
        assert (run_dir / "weights" / "last.pt").is_file()
        assert f"model: {out / r['yaml']}\n" in (run_dir / "args.yaml").read_text()  # trained from its own YAML
    assert "sorted by mAP50-95; ★ Pareto-optimal (gflops vs mAP50-95)" in result.output


def test_metrics_are_the_best_epoch_of_ultralytics_results(trained):
    import csv

    out, _, _ = trained
    for r in rows_of(out):
        with (out / r["run_dir"] / "results.csv").open(newline="") as fh:
            epochs = list(csv.DictReader(fh))
        best = max(epochs, key=lambda e: float(e["metrics/mAP50-95(B)"]))
        assert r["mAP50-95"] == pytest.approx(float(best["metrics/mAP50-95(B)"]), abs=1e-5)
        assert r["recall"] == pytest.approx(float(best["metrics/recall(B)"]), abs=1e-5)


def test_trained_plots_label_every_point(trained):
    from attnsurgeon.sweeps.plot import plot_data

    out, _, _ = trained
    rows = rows_of(out)
    plots = {p.stem: p for p in plot_data(rows)}
    assert set(plots) == {"cost_params", "cost_latency", "map_gflops", "map_latency"}
    for stem, data in plots.items():
        assert (out / "plots" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data.points) == 7
    assert plots["map_gflops"].front and set(plots["map_gflops"].front) <= {p[0] for p in plots["map_gflops"].points}


def test_a_trained_rerun_skips_all(trained):
    out, _, args = trained
    before = (out / "results.json").read_bytes()
    result = runner.invoke(app, [*args, *TRAIN, "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "7 row(s) already done" in result.output and "train" not in result.output.split("sweep:")[0]
    assert (out / "results.json").read_bytes() == before


def test_a_killed_sweep_is_completed_by_a_rerun(dataset, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "attnsurgeon", "sweep", "yolo11n.yaml", "-m", "SE,ECA", "--at", "8", "-o", str(out),
           "--train", str(dataset), *TRAIN, "--no-plots", "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            path = out / "results.json"
            if path.exists() and sum(r.get("train_status") == "ok" for r in rows_of(out)) >= 1:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the sweep ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its training process, mid-run
        proc.wait()
    killed = rows_of(out)
    done = [r["name"] for r in killed if r.get("train_status") == "ok"]
    assert 1 <= len(done) < 3
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    rows = rows_of(out)
    assert [r["name"] for r in rows] == ["yolo11n", "yolo11n-SE-after8", "yolo11n-ECA-after8"]
    assert len({r["key"] for r in rows}) == 3 and all(r["train_status"] == "ok" for r in rows)
    for name in done:  # what was trained before the kill was kept, not trained again
        assert next(r for r in rows if r["name"] == name) == next(r for r in killed if r["name"] == name)
    csv_lines = (out / "results.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 1 + 3
    assert json.loads(rerun.stdout)["skipped"] == ["yolo11n", "yolo11n-SE-after8", "yolo11n-ECA-after8"]


def test_ray_trials_give_the_same_rows(trained, dataset, tmp_path):
    ray = pytest.importorskip("ray")
    from attnsurgeon.sweeps import runner as sweeper

    out, _, _ = trained
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # Three of the seven variants trained above: the same rows, at less than half the CI time.
        rows = sweeper.sweep("yolo11n.yaml", "SE,EMA", "8", tmp_path / "ray", imgsz=64, runs=5, train=dataset,
                             epochs=1, batch=8, ray=True)  # fmt: skip
    finally:
        ray.shutdown()
    names = ["yolo11n", "yolo11n-SE-after8", "yolo11n-EMA-after8"]
    same = {r["name"]: (r["name"], r["params"], r["gflops"]) for r in rows_of(out)}
    assert [(r["name"], r["params"], r["gflops"]) for r in rows] == [same[n] for n in names]
    for r in rows:
        assert r["train_status"] == "ok", r["reason"]
        assert all(isinstance(r[c], (int, float)) for c in TRAIN_COLUMNS), r
        assert (tmp_path / "ray" / r["run_dir"] / "results.csv").is_file()


def test_weights_start_every_variant_from_the_same_checkpoint(trained, dataset, tmp_path):
    from attnsurgeon.ops import surgery as api

    out, _, _ = trained
    weights = out / "runs" / "yolo11n" / "weights" / "last.pt"  # the base trained above (2 classes)
    sweep_dir = tmp_path / "w"
    args = ["sweep", "yolo11n.yaml", "-m", "SE", "--at", "8", "-o", sweep_dir, "--train", dataset, "--weights", weights]
    result = runner.invoke(app, [str(a) for a in [*args, *TRAIN, "--no-plots"]])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in rows_of(sweep_dir)}
    assert all(r["train_status"] == "ok" for r in rows.values())
    start = sweep_dir / "weights" / "yolo11n-SE-after8.pt"
    assert "IdentityInit, [SE, [16]]" in start.with_suffix(".yaml").read_text()  # identity-initialised by default
    args_yaml = (sweep_dir / "runs" / "yolo11n-SE-after8" / "args.yaml").read_text()
    assert f"model: {start}\n" in args_yaml
    assert f"model: {weights}\n" in (sweep_dir / "runs" / "yolo11n" / "args.yaml").read_text()
    expected = api.insert("yolo11n.yaml", "SE", 8, verify=False, write=False).yaml_text
    assert (sweep_dir / "yolo11n-SE-after8.yaml").read_text() == expected  # the variant's YAML is left as made
