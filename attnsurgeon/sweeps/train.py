"""Training the variants of a sweep with Ultralytics' own trainer, one process per variant and per device.

Every variant trains in a fresh Python process (``python -m attnsurgeon.sweeps.train``, which calls
``YOLO(model).train(...)``): one process per device runs side by side, the way Ultralytics users split runs across
GPUs. Metrics are read back from the run directory's ``results.csv``, the file Ultralytics writes every epoch. With
``weights`` every variant starts from the same pretrained checkpoint through checkpoint surgery
(:func:`attnsurgeon.ops.surgery.insert` on the ``.pt``, identity-initialised by default) so the comparison is fair.
"""

from __future__ import annotations

import concurrent.futures
import csv
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import AttnSurgeonError, ModelFileError, UsageError
from attnsurgeon.sweeps.store import row_key

RUNS_DIR = "runs"
WEIGHTS_DIR = "weights"  # --weights: each variant's starting checkpoint (checkpoint surgery on the base .pt)
# Ultralytics' results.csv column -> results column (detection: the (B)ox metrics).
METRIC_COLUMNS = {
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
}


def runs_dir(directory: Path) -> Path:
    """Where the variants' runs go, absolute: Ultralytics puts a relative ``project`` under its own runs folder."""
    return Path(os.path.abspath(directory)) / RUNS_DIR


def parse_devices(device: str) -> list[str]:
    """``cpu`` -> ['cpu']; ``0,1,2,3`` -> ['0', '1', '2', '3'] (one training process each); ``cuda`` -> ['0']."""
    text = str(device).strip().lower()
    if text in ("cpu", "mps"):
        return [text]
    if text == "cuda":
        return ["0"]
    parts = [p.strip().removeprefix("cuda:") for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise UsageError(f"--device {device!r}: use cpu, cuda, a CUDA index (0) or several (0,1,2,3)")
    return list(dict.fromkeys(parts))


def train_settings(data: str | Path, epochs: int, batch: int, imgsz: int, device: str,
                   weights: str | Path | None, identity_init: bool) -> dict[str, Any]:  # fmt: skip
    """The training settings of a sweep, checked (part of every trained row's key)."""
    path = Path(data).expanduser()
    if not path.is_file():
        raise ModelFileError(f"--train {data}: no such dataset YAML (give an Ultralytics data.yaml)")
    for value, option in ((epochs, "--epochs"), (batch, "--batch")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UsageError(f"{option} {value}: must be a positive integer")
    weights_path = None
    if weights is not None:
        weights_path = Path(weights).expanduser()
        if weights_path.suffix.lower() != ".pt" or not weights_path.is_file():
            raise ModelFileError(f"--weights {weights}: no such .pt checkpoint")
    return {"data": str(path.resolve()), "epochs": epochs, "batch": batch, "imgsz": imgsz,
            "devices": parse_devices(device), "weights": str(weights_path.resolve()) if weights_path else None,
            "identity_init": bool(identity_init) if weights_path else None}  # fmt: skip


def train_key(settings: dict[str, Any]) -> str:
    return row_key({k: v for k, v in settings.items() if k != "devices"})


def needs_training(row: dict[str, Any], key: str, retry_failed: bool) -> bool:
    if row["status"] != "ok":
        return False
    if row.get("train_key") != key:
        return True
    return row.get("train_status") == "failed" and retry_failed


def model_source(directory: Path, row: dict[str, Any], settings: dict[str, Any], base_graph: Any) -> Path:
    """What a variant trains from: its YAML, or with weights the base checkpoint moved onto it (checkpoint surgery)."""
    weights = settings.get("weights")
    if not weights:
        return directory / row["yaml"]
    if row["op"] == "base":
        return Path(weights)
    from attnsurgeon.ops import augment as augment_op
    from attnsurgeon.ops import surgery
    from attnsurgeon.sweeps.plan import resolve_at

    (directory / WEIGHTS_DIR).mkdir(exist_ok=True)
    out = directory / WEIGHTS_DIR / f"{row['name']}.pt"  # its architecture YAML goes beside it, not over the variant's
    operation = surgery.insert if row["op"] == "insert" else augment_op.augment
    operation(weights, row["module"], resolve_at(base_graph, row["at"]), row["args"], output=out, force=True,
              identity_init=bool(settings.get("identity_init")), verify=False)  # fmt: skip
    return out


def read_results(run_dir: Path) -> dict[str, Any]:
    """The best epoch (highest mAP50-95) of Ultralytics' results.csv, and the training time."""
    path = run_dir / "results.csv"
    if not path.is_file():
        raise ModelFileError(f"{path}: Ultralytics wrote no results (training did not finish an epoch)")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(fh)]
    if not rows or "metrics/mAP50-95(B)" not in rows[0]:
        raise ModelFileError(f"{path}: no detection metrics (metrics/mAP50-95(B)) in Ultralytics' results")
    best = max(rows, key=lambda r: float(r["metrics/mAP50-95(B)"] or "nan"))
    out: dict[str, Any] = {ours: round(float(best[theirs]), 5) for theirs, ours in METRIC_COLUMNS.items()}
    out["train_s"] = round(float(rows[-1]["time"]), 2) if rows[-1].get("time") else None
    return out


def train_arguments(source: Path, settings: dict[str, Any], device: str, project: Path, name: str) -> dict[str, Any]:
    """Keyword arguments of ``YOLO(source).train``; plots off (they would fetch a font), runs under the sweep; and
    ``plugins``: the plugin files the variant lists, which the training process adds first (the sweep wrote that
    list from the user's own --plugin, so an entry outside the sweep folder is used on purpose)."""
    return {"model": str(source), "plugins": plugins_of(source), "data": settings["data"],
            "epochs": settings["epochs"], "batch": settings["batch"],
            "imgsz": settings["imgsz"], "device": device, "project": str(project), "name": name, "exist_ok": True,
            "plots": False, "workers": 0 if device == "cpu" else 8, "verbose": False, "seed": 0}  # fmt: skip


def plugins_of(source: Path) -> list[str]:
    """The ``attnsurgeon_plugins`` entries of a variant's YAML, files made absolute (nothing for a checkpoint)."""
    if source.suffix.lower() not in (".yaml", ".yml"):
        return []
    from attnsurgeon.sources import recorded

    data = model_doc.loads(source.read_text(encoding="utf-8"))
    return [recorded.absolute(entry, source.parent) for entry in recorded.recorded_entries(data)]


def train_in_process(arguments: dict[str, Any]) -> None:
    """``YOLO(model).train(...)`` here (a training subprocess, or a Ray trial's worker)."""
    from attnsurgeon import sources
    from attnsurgeon.ultralytics_bridge import ultra

    arguments = dict(arguments)
    sources.add_files(arguments.pop("plugins", []))
    ultra.offline_environment()
    ultra.register()
    from ultralytics import YOLO

    YOLO(arguments.pop("model")).train(**arguments)


def _train_subprocess(arguments: dict[str, Any], log: Path) -> None:
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.run([sys.executable, "-m", "attnsurgeon.sweeps.train", json.dumps(arguments)],
                              stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)  # fmt: skip
    if proc.returncode:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        raise RuntimeError(f"training exited with code {proc.returncode}: {last} (log: {log})")


def train_all(job: Any, retry_failed: bool, step: Callable[[str, str, int, int], None]) -> None:
    """Train every costed variant not trained with these settings: one process per device, side by side."""
    settings = job.settings.train
    key = train_key(settings)
    rows = [r for r in job.rows() if needs_training(r, key, retry_failed)]
    total, done = len(job.rows()), len(job.rows()) - len(rows)
    if not rows:
        return
    devices: queue.Queue[str] = queue.Queue()
    for d in settings["devices"]:
        devices.put(d)
    lock = threading.Lock()
    project = runs_dir(job.directory)
    project.mkdir(exist_ok=True)
    base_graph = model_doc.load(job.settings.model).graph

    def one(row: dict[str, Any]) -> None:
        nonlocal done
        device = devices.get()
        try:
            step("train", row["name"], done, total)
            run_dir = project / row["name"]
            shutil.rmtree(run_dir, ignore_errors=True)  # a killed run's epochs must not mix with this one's
            update: dict[str, Any] = {"train_key": key, "run_dir": os.path.relpath(run_dir, job.directory)}
            try:
                source = model_source(job.directory, row, settings, base_graph)
                _train_subprocess(train_arguments(source, settings, device, project, row["name"]),
                                  project / f"{row['name']}.log")  # fmt: skip
                update.update(read_results(run_dir), train_status="ok", reason=None)
            except (AttnSurgeonError, RuntimeError) as exc:
                update.update(train_status="failed", reason=str(exc))
            with lock:
                job.store.put({**row, **update})
                done += 1
                step("done", row["name"], done, total)
        finally:
            devices.put(device)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(settings["devices"]))
    try:
        for future in [pool.submit(one, r) for r in rows]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # an interrupt: no new trainings, the running ones end


def main(argv: list[str] | None = None) -> None:
    """``python -m attnsurgeon.sweeps.train '{"model": ..., "data": ...}'``: one variant's training process."""
    arguments = json.loads((argv if argv is not None else sys.argv[1:])[0])
    train_in_process(arguments)


if __name__ == "__main__":
    main()
