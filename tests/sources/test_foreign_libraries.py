"""Modules from installed libraries without copying them: ``--module timm:CbamModule``, ``ultralytics:CBAM``; ``list
--source`` computes which classes pass the contract and caches it; every class it says passes is inserted after
layer 8 of yolo11n, built in a fresh process by plain Ultralytics and trained one step (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ultralytics_bridge import ultra

pytest.importorskip("timm")
runner = CliRunner()


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def params(module: object) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def here(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "args", "row", "direct"),
    [
        (
            "timm:CbamModule",
            "{rd_ratio: 0.125}",
            "[rd_ratio: 0.125]",
            "timm.layers.cbam:CbamModule(256, rd_ratio=0.125)",
        ),
        ("timm.layers:EcaModule", None, "[]", "timm.layers:EcaModule(256)"),
        ("ultralytics:CBAM", "[3]", "[3]", "ultralytics.nn.modules:CBAM(256, 3)"),
        ("ultralytics:PSA", None, "[]", "ultralytics.nn.modules:PSA(256, 256)"),
        ("ultralytics:AAttn", "{num_heads: 4}", "[num_heads: 4]", "ultralytics.nn.modules.block:AAttn(256, 4)"),
    ],
)
def test_a_library_class_is_inserted_as_it_is(here, module, args, row, direct, one_thread):
    out = here / "yolo11n-lib.yaml"
    argv = ["insert", "yolo11n.yaml", "-m", module, "--after", "8", "--imgsz", "128", "-o", out]
    result = cli(*argv, *(["--args", args] if args else []))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert f"attnsurgeon_plugins: [{module}] # plugin files" in text
    library, _, cls = module.partition(":")
    name = ("Ultralytics" if library == "ultralytics" else "Timm" if cls == "CbamModule" else "") + cls
    assert f"  - [-1, 1, {name}, {row}] # 9 {name} (attnsurgeon)" in text.splitlines()
    built = ultra.build_model(model_doc.to_plain(model_doc.load(out).data), "n", out.name)
    where, _, call = direct.partition(":")
    expected = eval(call, vars(__import__(where, fromlist=["_"])))  # the class built directly on 256 channels
    assert type(built.model[9].block) is type(expected)
    assert params(built.model[9]) == params(expected)


def test_a_library_module_checkpoint_reloads_in_a_fresh_process_with_safe_load(here):
    result = cli("insert", "yolo11n.yaml", "-m", "timm:CbamModule", "--after", "8", "--no-verify", "-o", "m.yaml")
    assert result.exit_code == 0, result.output
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("ATTNSURGEON_AUTOLOAD", None)
    save = "from ultralytics import YOLO; YOLO('m.yaml').save('yolo11n-m.pt')"
    subprocess.run([sys.executable, "-c", save], env=env, cwd=here, check=True, timeout=300, capture_output=True)
    load = "from ultralytics import YOLO; print(type(YOLO('yolo11n-m.pt').model.model[9].block).__name__)"
    loaded = subprocess.run([sys.executable, "-c", load], env={**env, "ULTRALYTICS_SAFE_LOAD": "1"}, cwd=here,
                            timeout=300, capture_output=True, text=True)  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["CbamModule"]


def test_list_source_is_computed_once_then_read_from_the_cache(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("ATTNSURGEON_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ATTNSURGEON_NO_CACHE", raising=False)
    result = cli("list", "--source", "ultralytics", "--json")
    assert result.exit_code == 0, result.output
    entries = {e["source"]: e for e in json.loads(result.output)}
    assert entries["ultralytics:CBAM"]["ok"] and entries["ultralytics:CBAM"]["name"] == "UltralyticsCBAM"
    assert entries["ultralytics:PSA"]["ok"] and entries["ultralytics:C3k2"]["ok"]
    assert entries["ultralytics:AAttn"] == {
        "source": "ultralytics:AAttn",
        "name": "UltralyticsAAttn",
        "class": "ultralytics.nn.modules.block.AAttn",
        "args": "num_heads: int, area: int = 1",
        "ok": False,
        "reason": "needs num_heads (no default)",
    }
    assert entries["ultralytics:ADown"]["reason"] == (
        "output 1x64x10x10 for input 1x64x20x20: the module changes the stride; it cannot be inserted between layers"
    )
    assert "ultralytics:Concat" not in entries  # no channel argument: not a candidate at all
    started = time.perf_counter()
    again = cli("list", "--source", "ultralytics", "--json")
    assert again.output == result.output and time.perf_counter() - started < 5
    table = cli("list", "--source", "ultralytics")
    passing = sum(e["ok"] for e in entries.values())
    assert table.output.startswith(f"{passing} of ultralytics's classes pass the module contract")
    assert f"\n{len(entries) - passing} more take a channel argument but fail the contract" in table.output


def test_list_source_refuses_an_unknown_library():
    result = cli("list", "--source", "keras")
    assert result.exit_code == 2
    assert (
        result.output == "error: --source 'keras' is not a library attnsurgeon scans; use one of: timm, ultralytics\n"
    )


TRAIN = """
import sys
import torch
from ultralytics import YOLO
torch.manual_seed(0)
for path in sys.argv[1:]:
    model = YOLO(path).model
    from ultralytics.cfg import get_cfg
    model.args = get_cfg()
    model.train()
    boxes = torch.tensor([[0.5, 0.5, 0.3, 0.3], [0.4, 0.4, 0.2, 0.2]])
    batch = {"img": torch.rand(2, 3, 64, 64), "cls": torch.tensor([[0.0], [1.0]]), "bboxes": boxes,
             "batch_idx": torch.tensor([0.0, 1.0])}
    loss, _ = model.loss(batch)
    loss.sum().backward()
    layer = model.model[9]
    dead = [n for n, p in layer.named_parameters() if p.grad is None]
    print(type(layer).__name__, "ok" if torch.isfinite(loss).all() and not dead else f"no gradient: {dead}")
"""


@pytest.mark.slow
@pytest.mark.parametrize("library", ["timm", "ultralytics"])
def test_every_class_list_says_passes_builds_and_trains_in_a_fresh_process(
    library, tmp_path, monkeypatch, clean_registry
):
    monkeypatch.chdir(tmp_path)
    listed = cli("list", "--source", library, "--json")
    assert listed.exit_code == 0, listed.output
    passing = [e for e in json.loads(listed.output) if e["ok"]]
    assert passing
    paths = []
    for entry in passing:
        out = tmp_path / f"yolo11n-{entry['name']}.yaml"
        result = cli("insert", "yolo11n.yaml", "-m", entry["source"], "--after", "8", "--no-verify", "-o", out)
        assert result.exit_code == 0, result.output
        paths.append(str(out))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    run = subprocess.run([sys.executable, "-c", TRAIN, *paths], capture_output=True, text=True, env=env, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.splitlines() == [f"{e['name']} ok" for e in passing]
