"""``attnsurgeon profile``: GFLOPs against Ultralytics, the report, latency, devices, JSON, errors (exact FLOPs of
single modules: test_flops.py)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core import sizes
from attnsurgeon.costs import flops, timing
from attnsurgeon.errors import CheckpointError, DeviceError, ModelFileError, UsageError
from attnsurgeon.ops import profile
from attnsurgeon.ultralytics_bridge import checkpoints

runner = CliRunner()
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
FAST = ["--imgsz", "64", "--runs", "2"]  # small and short: the CLI tests check plumbing, not speed


pytestmark = pytest.mark.usefixtures("one_thread")  # figures, not speed (conftest.one_thread)


def run_cli(*args: str):
    return runner.invoke(app, ["profile", *args])


def run_json(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --------------------------------------------------------------------------------------------------------------------
# Whole models: GFLOPs as Ultralytics prints them, the report, per layer


@pytest.fixture(scope="module")
def yolo11n(one_thread) -> nn.Module:
    return profile.load_model("yolo11n.yaml").model


@pytest.fixture(scope="module")
def yolo11n_report(one_thread, yolo11n) -> profile.ProfileReport:  # profiled under this module's thread count
    return profile.profile(yolo11n, imgsz=640, runs=2, warmup=0, layers=True)[0]


def _model_info(model: nn.Module, imgsz: int) -> tuple:
    from attnsurgeon.ultralytics_bridge import ultra

    with ultra.quiet():
        return model.info(verbose=True, imgsz=imgsz)  # (layers, params, gradients, GFLOPs), as Ultralytics prints


def test_yolo11n_gflops_and_params_equal_model_info(yolo11n, yolo11n_report):
    _, n_params, _, gflops = _model_info(yolo11n, 640)
    assert yolo11n_report.gflops.source == "ultralytics"
    assert yolo11n_report.gflops.value == gflops
    assert yolo11n_report.params == n_params
    assert round(gflops, 1) == 6.7  # what Ultralytics' own summary prints for YOLO11n


@pytest.mark.parametrize("name", ["yolov8n.yaml", "yolo12n.yaml"])
def test_gflops_equal_model_info(name):
    model = profile.load_model(name).model
    report = profile.profile(model, imgsz=256, runs=1, warmup=0)[0]
    _, n_params, _, gflops = _model_info(model, 256)
    assert gflops > 0
    assert report.gflops.value == gflops
    assert report.params == n_params
    # exact count: same order (Ultralytics' thop also counts some elementwise work); never 0
    assert 0.8 * gflops < report.gflops_exact < 1.1 * gflops
    assert "layers" not in report.as_dict()  # only when asked


def test_report_figures(yolo11n_report):
    r = yolo11n_report
    assert r.fused and r.deployed is not None and not r.deployed.training
    assert r.device == "cpu" and r.dtype == "float32" and r.imgsz == (640, 640) and r.batch == 1
    assert r.threads == torch.get_num_threads()
    assert r.latency.runs == 2 and r.latency.median > 0 and r.latency.p90 >= r.latency.median
    assert r.throughput == pytest.approx(1000 / r.latency.median)
    assert r.memory is None  # CPU
    assert 6.4 < r.gflops_exact < 6.7


def test_layers_add_up(yolo11n_report):
    r = yolo11n_report
    assert r.layers is not None and len(r.layers) == len(r.deployed.model)
    assert sum(layer.flops for layer in r.layers) == r.flops_exact
    assert sum(layer.params for layer in r.layers) == r.params
    assert all(layer.ms is not None and layer.ms > 0 for layer in r.layers)
    assert sum(layer.share for layer in r.layers) == pytest.approx(1.0)
    assert not any(layer.attention for layer in r.layers)
    assert [layer.module for layer in r.layers][:3] == ["Conv", "Conv", "C3k2"]


def test_compare_differences():
    from types import SimpleNamespace

    def fake(params, gflops, median, memory):
        return SimpleNamespace(
            params=params,
            gflops=flops.Gflops(gflops, "ultralytics"),
            gflops_exact=gflops,
            latency=timing.Latency([median], 0),
            throughput=1000 / median,
            memory_mb=memory,
        )

    delta = profile.compare(fake(110, 2.0, 12.0, None), fake(100, 1.0, 10.0, None))  # type: ignore[arg-type]
    assert delta["params"] == {"base": 100, "new": 110, "abs": 10, "rel": 0.1}
    assert delta["gflops"]["rel"] == 1.0
    assert delta["latency_median_ms"]["abs"] == 2.0 and delta["latency_median_ms"]["rel"] == 0.2
    assert delta["memory_mb"]["abs"] is None


# --------------------------------------------------------------------------------------------------------------------
# Latency, devices, sizes


def test_measure_latency_runs_and_budget():
    conv = nn.Conv2d(3, 4, 3).eval()
    x = torch.rand(1, 3, 16, 16)
    seen = []
    exact = timing.measure_latency([conv], x, runs=7, warmup=2, progress=lambda *a: seen.append(a))[0]
    assert exact.runs == 7 and exact.warmup == 2
    assert ("timing", 7, 7) in seen and ("warm-up", 2, 2) in seen
    budget = timing.measure_latency([conv, conv], x, runs=None, warmup=0, budget_s=0.0)
    assert [lat.runs for lat in budget] == [timing.MIN_RUNS] * 2  # interleaved: both models, same count


def test_latency_statistics():
    import numpy as np

    samples = [float(v) for v in (5, 1, 4, 2, 3, 10, 7)]
    lat = timing.Latency(samples, 1)
    assert lat.median == 4.0
    assert lat.p90 == pytest.approx(np.percentile(samples, 90))
    d = lat.as_dict()
    assert d["min"] == 1.0 and d["max"] == 10.0 and d["runs"] == 7 and d["warmup"] == 1
    assert d["iqr"] == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))


@pytest.mark.parametrize(
    ("text", "expected"), [("640", (640, 640)), ("480,640", (480, 640)), ("480x640", (480, 640)), (320, (320, 320))]
)
def test_parse_imgsz(text, expected):
    assert sizes.parse_imgsz(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "0", "1,2,3", "-32"])
def test_parse_imgsz_rejects(text):
    with pytest.raises(UsageError, match="--imgsz"):
        sizes.parse_imgsz(text)


def test_check_imgsz():
    sizes.check_imgsz((480, 640), 32)
    with pytest.raises(UsageError, match=r"--imgsz 100 is not a multiple of the model stride 32; use e\.g\. 96"):
        sizes.check_imgsz((100, 100), 32)
    with pytest.raises(
        UsageError, match=r"--imgsz 480,100 is not a multiple of the model stride 64; use e\.g\. 512,128"
    ):
        sizes.check_imgsz((480, 100), 64)


def test_parse_device():
    assert profile.parse_device("cpu") == torch.device("cpu")
    assert profile.parse_device(" CPU ") == torch.device("cpu")
    for bad in ("tpu", "cuda:x", "0,1", "gpu"):
        with pytest.raises(DeviceError):
            profile.parse_device(bad)
    with pytest.raises(DeviceError, match="--half needs a CUDA device"):
        profile.parse_device("cpu", half=True)


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "0"])
def test_parse_device_without_cuda(device):
    with pytest.raises(DeviceError, match="CUDA is not available here"):
        profile.parse_device(device)


@needs_cuda
def test_parse_device_with_cuda():
    assert profile.parse_device("0") == torch.device("cuda", 0)
    assert profile.parse_device("cuda:0", half=True) == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match="there is no CUDA device"):
        profile.parse_device(str(torch.cuda.device_count()))


# --------------------------------------------------------------------------------------------------------------------
# The CLI


JSON_KEYS = {"model", "device", "imgsz", "batch", "dtype", "params", "gflops", "gflops_exact", "latency_ms"}
JSON_KEYS |= {"throughput", "memory_mb", "threads", "not_counted"}


@pytest.fixture(scope="session")
def se_yaml(tmp_path_factory):
    """yolo11n with SE inserted after layer 8 (P5, 256 channels at scale n): SE is layer 9."""
    from attnsurgeon.ops import surgery as api

    out = tmp_path_factory.mktemp("models") / "yolo11n-SE.yaml"
    api.insert("yolo11n.yaml", "SE", after=8, output=out, verify=False)
    return out


@pytest.fixture(scope="session")
def se_compare(se_yaml):
    """The CLI's --compare run with --json, once."""
    return run_json(str(se_yaml), "--compare", "yolo11n.yaml", *FAST, "--layers")


def test_cli_json_keys_and_layers():
    data = run_json("yolo11n.yaml", "--imgsz", "64,96", "--runs", "2", "--layers", "--batch", "2")
    assert set(data) >= JSON_KEYS
    assert set(data["latency_ms"]) >= {"median", "p90", "min", "max", "iqr"}
    assert data["model"] == "yolo11n" and data["scale"] == "n"
    assert data["device"] == "cpu" and data["dtype"] == "float32" and data["batch"] == 2
    assert data["imgsz"] == [64, 96] and data["memory_mb"] is None
    assert data["latency_ms"]["runs"] == 2
    assert data["throughput"] == pytest.approx(2000 / data["latency_ms"]["median"], rel=1e-3)
    layers = data["layers"]
    assert len(layers) == 24 and layers[-1]["module"] == "Detect"
    assert {"index", "module", "params", "flops", "gflops", "ms", "share", "attention"} <= set(layers[0])
    assert sum(layer["params"] for layer in layers) == data["params"]
    assert sum(layer["flops"] for layer in layers) == data["flops_exact"]


def test_cli_compare_with_inserted_attention(se_compare):
    data = se_compare
    se_params = 2 * 256 * 16
    assert data["model"] == "yolo11n-SE"
    base, delta = data["compare"]["base"], data["compare"]["delta"]
    assert base["model"] == "yolo11n" and set(base) >= JSON_KEYS
    assert delta["params"]["abs"] == se_params == data["params"] - base["params"]
    assert delta["params"]["rel"] == pytest.approx(se_params / base["params"], abs=1e-6)
    assert set(delta) >= {"gflops", "gflops_exact", "latency_median_ms", "latency_p90_ms", "throughput"}
    attention = [layer for layer in data["layers"] if layer["attention"]]
    assert [(a["index"], a["module"]) for a in attention] == [(9, "SE")]
    assert attention[0]["params"] == se_params
    assert attention[0]["flops"] == 2 * (256 * 16 + 16 * 256)  # the hand count above
    assert data["flops_exact"] - base["flops_exact"] == 2 * (256 * 16 + 16 * 256)


def test_cli_table(monkeypatch, se_yaml, yolo11n_report):
    """The Rich rendering, on reports already measured (profile() itself is covered above)."""
    se = profile.profile(se_yaml, imgsz=64, runs=2, warmup=0, layers=True)[0]
    monkeypatch.setattr(profile, "profile", lambda *args, **kwargs: [se, yolo11n_report])
    result = run_cli(str(se_yaml), "--compare", "yolo11n.yaml", "--layers")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("params", "GFLOPs (Ultralytics)", "GFLOPs (exact)", "latency median", "p90", "throughput", "Δ%"):
        assert text in out
    assert "★ SE" in out and "inserted attention (1 layer)" in out
    assert "1 thread ·" in out  # the CPU thread count is reported
    assert "not counted" in out and "CUDA only" in out
    assert "+8,192" in out  # params difference


def test_cli_checkpoint(tmp_path, se_yaml):
    model = profile.load_model(se_yaml).model
    path = tmp_path / "best.pt"
    torch.save({"model": copy.deepcopy(model).half(), "train_args": {}, "epoch": -1}, path)
    data = run_json(str(path), *FAST, "--layers")
    assert data["kind"] == "checkpoint" and data["model"] == "best"
    assert data["params"] == flops.count_params(model)
    assert [layer["module"] for layer in data["layers"] if layer["attention"]] == ["SE"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["yolo11n.yaml", "--device", "tpu"], 11, "is not a device"),
        (["yolo11n.yaml", "--device", "0,1"], 11, "one device"),
        (["yolo11n.yaml", "--half"], 11, "--half needs a CUDA device"),
        (["yolo11n.yaml", "--imgsz", "abc"], 2, "--imgsz abc"),
        (["yolo11n.yaml", "--imgsz", "100"], 2, "not a multiple of the model stride 32"),
        (["yolo11n.yaml", "--batch", "0"], 2, "--batch 0"),
        (["yolo11n.yaml", "--runs", "0"], 2, "--runs 0"),
        (["yolo11n.yaml", "--scale", "all"], 2, "one scale"),
        (["no-such-model.yaml"], 3, "no such file"),
        (["missing.pt"], 3, "no such file"),
    ],
)
def test_cli_errors(args, code, message):
    result = run_cli(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(CUDA, reason="checks the message on a machine without CUDA")
def test_cli_cuda_without_cuda():
    result = run_cli("yolo11n.yaml", "--device", "cuda")
    assert result.exit_code == 11, result.output
    assert "CUDA is not available here" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_cli_bad_checkpoint(tmp_path, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    result = run_cli(str(path))
    assert result.exit_code == 10, result.output
    assert (
        "broken.pt" in result.output
        and "cannot be read: the file is empty, truncated, corrupted or not a PyTorch file" in result.output
    )
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_checkpoint_without_model(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match=r"weights\.pt"):
        checkpoints.load_checkpoint(path)
    with pytest.raises(ModelFileError, match="never downloads"):
        checkpoints.load_checkpoint(tmp_path / "yolo11n.pt")


def test_cli_help_and_no_torch_at_import():
    result = runner.invoke(app, ["profile", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--device", "--imgsz", "--batch", "--half", "--runs", "--compare", "--layers", "--json"):
        assert option in result.output
    code = "import sys, attnsurgeon.cli.profile_cmd; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------------------------------------------------
# CUDA (skipped without a GPU)


@needs_cuda
@pytest.mark.parametrize("half", [False, True])
def test_cuda_profile(se_yaml, half):
    args = [str(se_yaml), "--device", "cuda", "--imgsz", "320", "--runs", "10", "--layers", "--compare", "yolo11n.yaml"]
    data = run_json(*args, *(["--half"] if half else []))
    assert data["device"].startswith("cuda") and data["dtype"] == ("float16" if half else "float32")
    assert data["memory_mb"] > 0 and data["memory_forward_mb"] > 0
    assert data["latency_ms"]["median"] > 0 and data["latency_ms"]["runs"] == 10
    assert data["compare"]["base"]["memory_mb"] > 0
    cpu = run_json(str(se_yaml), "--imgsz", "320", "--runs", "1")
    assert data["gflops"] == cpu["gflops"]  # Ultralytics' figure is taken on the float32 model as built
    assert data["gflops_exact"] == pytest.approx(cpu["gflops_exact"], rel=1e-6)
    assert all(layer["ms"] > 0 for layer in data["layers"])
