"""`attnsurgeon sweep --formats`: each variant exported to TorchScript and ONNX with the real exporters, checked there
and timed there against the base; the new columns in results.csv/json, the table and the variants x formats plot."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

pytest.importorskip("onnxruntime", reason="the ONNX runtime is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def deployed_sweep(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("sweep") / "out"
    cache = tmp_path_factory.mktemp("cache")
    argv = ["sweep", "yolo11n.yaml", "-m", "SE", "--at", "8", "-o", str(out), "--imgsz", "64", "--runs", "3",
            "--formats", "torchscript,onnx", "--json"]  # fmt: skip
    result = runner.invoke(app, argv, env={"ATTNSURGEON_CACHE_DIR": str(cache)})
    return out, result


def test_every_variant_has_a_check_and_a_ratio_per_format(deployed_sweep):
    out, result = deployed_sweep
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    base, variant = rows
    assert base["op"] == "base" and variant["name"] == "yolo11n-SE-after8"
    for fmt in ("torchscript", "onnx"):
        assert base[f"{fmt}_ratio"] == 1.0 and base[f"{fmt}_ms"] > 0
        assert variant[f"{fmt}_check"] == "pass"
        assert variant[f"{fmt}_ms"] > 0 and variant[f"{fmt}_ratio"] > 0  # timed, not judged: the CPU is shared
    assert variant["deploy_reasons"] is None
    for fmt in ("openvino", "ncnn"):  # not asked for: not in the files
        assert variant.get(f"{fmt}_check") is None
    with (out / "results.csv").open() as f:
        header = next(csv.reader(f))
    assert header[:3] == ["name", "op", "module"] and "key" in header and "train_key" in header  # kept
    assert {"torchscript_check", "torchscript_ratio", "onnx_ms", "onnx_ratio", "deploy_reasons"} <= set(header)
    assert "ncnn_check" not in header


def test_the_formats_plot_and_table(deployed_sweep):
    from attnsurgeon.cli._sweep_view import failure_notes, table_cells
    from attnsurgeon.sweeps.plot import deploy_grid

    out, result = deployed_sweep
    assert str(out / "plots" / "deploy_formats.png") in json.loads(result.stdout)["plots"]
    assert (out / "plots" / "deploy_formats.png").read_bytes()[:4] == b"\x89PNG"
    rows = json.loads((out / "results.json").read_text())["rows"]
    grid = deploy_grid(rows)
    assert grid is not None and grid.variants == ["base", "SE-after8"] and grid.formats == ["onnx", "torchscript"]
    assert grid.cells[0] == [1.0, 1.0]
    # a failure is a cross in the plot, ✗ in the table and a note with its reason
    rows[1].update(onnx_check="fail", onnx_ratio=None, deploy_reasons={"onnx": "export onnx: differs"})
    assert deploy_grid(rows).cells[1][0] == "fail"
    header, cells = table_cells(rows, "gflops", None)
    assert header[-3:] == ["onnx ×base", "torchscript ×base", "status"]
    assert cells[-1][-3] == "✗" and cells[-1][-1] == "ok"
    assert "yolo11n-SE-after8 / onnx: export onnx: differs" in failure_notes(rows)


def test_an_unknown_format_is_one_line(tmp_path):
    result = runner.invoke(app, ["sweep", "yolo11n.yaml", "-m", "SE", "--at", "8", "-o", str(tmp_path / "o"),
                                 "--formats", "tflite"])  # fmt: skip
    assert result.exit_code == 2
    assert "--formats 'tflite': use one or more of onnx, torchscript, openvino, ncnn" in result.output


CRASHY = """
import os, signal, sys
from pathlib import Path

import torch
from torch import nn

FLAG = Path(__file__).with_name("crash-next")


class Crashy(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        # dies natively, as NCNN does on some exports, once, and only in the sweep's deployment child
        if torch.jit.is_tracing() and "format_cells" in sys.argv[0] and FLAG.exists():
            FLAG.unlink()
            os.kill(os.getpid(), signal.SIGSEGV)
        return x * self.scale
"""


def test_a_runtime_that_crashes_is_one_cell_not_the_sweep(tmp_path, one_thread):
    (tmp_path / "crashy.py").write_text(CRASHY, encoding="utf-8")
    (tmp_path / "crash-next").touch()
    out = tmp_path / "out"
    argv = ["sweep", "yolo11n.yaml", "-m", f"{tmp_path / 'crashy.py'}:Crashy", "--at", "8", "-o", str(out),
            "--imgsz", "64", "--runs", "2", "--formats", "torchscript,onnx", "--json"]  # fmt: skip
    result = runner.invoke(app, argv, env={"ATTNSURGEON_CACHE_DIR": str(tmp_path / "cache")})
    assert result.exit_code == 0, result.output
    base, variant = json.loads((out / "results.json").read_text())["rows"]
    assert variant["status"] == "ok" and base["torchscript_ratio"] == 1.0
    # the first format's child died: that cell says how; a fresh child did the next format
    assert variant["torchscript_check"] == "fail"
    assert variant["deploy_reasons"] == {"torchscript": "crashed: signal 11 (SIGSEGV)"}
    assert variant["onnx_check"] == "pass" and variant["onnx_ratio"] > 0
    assert not (tmp_path / "crash-next").exists()
