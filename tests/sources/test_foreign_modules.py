"""Attention modules as their authors wrote them: plain ``nn.Module`` files in the styles of public repositories
(tests/sources/foreign_modules.py) are inserted after layer 8 of yolo11n with ``-m FILE.py:ClassName``, or refused with
the contract's one-line reason; an inserted one has exactly the parameters of the class built directly on the layer's
channels, and its YAML builds in a fresh process with plain Ultralytics, as does a checkpoint saved from it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from foreign_modules import HEADER, MODULES, ODD_NAME
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
CHANNELS_AFTER_8 = 256  # yolo11n at n: layer 8 (C3k2 1024 x 0.25) has 256 channels
INSERTED = [f for f, entry in MODULES.items() if isinstance(entry[3], tuple)]
REFUSED = [f for f, entry in MODULES.items() if isinstance(entry[3], str)]


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("foreign")
    for name, (source, *_) in MODULES.items():
        (path / name).write_text(HEADER + source.lstrip("\n"))
    (path / "odd_name.py").write_text(HEADER + ODD_NAME.lstrip("\n"))
    return path


@pytest.fixture
def here(folder, monkeypatch, clean_registry):
    monkeypatch.chdir(folder)
    return folder


def direct(folder: Path, file: str, cls: str, kwargs: dict) -> object:
    """The class built directly, from its own import of the file, on the layer's channels."""
    spec = importlib.util.spec_from_file_location(f"direct_{file[:-3]}", folder / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    values = {k: CHANNELS_AFTER_8 if v == "C" else v for k, v in kwargs.items()}
    return getattr(module, cls)(**values)


def params(module: object) -> int:
    return sum(p.numel() for p in module.parameters())


# The args of the inserted row as the YAML writes them (a one-key mapping in a flow list is written without braces;
# YAML and Ultralytics read [reduction: 8] as [{reduction: 8}]).
ROW_ARGS = {
    "se_attention.py": "[reduction: 8]",
    "timm_style.py": "[0.5, bias: False]",
    "gate_channels.py": "[{reduction_ratio: 8, pool_types: [avg]}]",
    "einops_attention.py": "[2, 8]",
    "n_feats.py": "[]",
    "inp_oup.py": "[16]",
    "c1_c2.py": "[k: 5]",
    "required_heads.py": "[4]",
}


@pytest.mark.parametrize("file", INSERTED)
def test_a_plain_module_is_inserted_with_the_inferred_channels(here, file, one_thread):
    _, cls, args, (name, kwargs) = MODULES[file]
    out = here / f"yolo11n-{file[:-3]}.yaml"
    argv = ["insert", "yolo11n.yaml", "-m", f"{file}:{cls}", "--after", "8", "--imgsz", "128", "-o", out, "--force"]
    result = cli(*argv, *(["--args", args] if args else []))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert f"attnsurgeon_plugins: [{file}:{cls}] # plugin files of this model's modules (see attnsurgeon)" in lines
    assert f"  - [-1, 1, {name}, {ROW_ARGS[file]}] # 9 {name} (attnsurgeon)" in lines
    built = ultra.build_model(model_doc.to_plain(model_doc.load(out).data), "n", out.name)
    layer = built.model[9]
    assert type(layer).__name__ == name
    assert type(layer.block).__name__ == cls
    assert params(layer) == params(direct(here, file, cls, kwargs)) > 0


@pytest.mark.parametrize("file", REFUSED)
def test_a_module_that_breaks_the_contract_is_refused_in_one_line(here, file, one_thread):
    _, cls, _, why = MODULES[file]
    out = here / f"yolo11n-{file[:-3]}.yaml"
    result = cli("insert", "yolo11n.yaml", "-m", f"{file}:{cls}", "--after", "8", "--imgsz", "128", "-o", out)
    assert result.exit_code == 7, result.output
    assert result.output.startswith(f"error: {cls} ({here / file}:{cls}): {why}"), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_the_class_default_never_survives(here):
    """SEAttention(channel=512): at the 64 channels of layer 4 the module is built on 64."""
    result = cli(
        "insert", "yolo11n.yaml", "-m", "se_attention.py:SEAttention", "--after", "4", "--no-verify", "-o", "x.yaml"
    )
    assert result.exit_code == 0, result.output
    built = ultra.build_model(model_doc.to_plain(model_doc.load(here / "x.yaml").data), "n", "yolo11n-x.yaml")
    assert built.model[5].block.fc[0].in_features == 128  # layer 4 of yolo11n at n: C3k2 512 x 0.25
    (here / "x.yaml").unlink()


def test_plugin_then_module_by_name_and_the_renamed_class(here):
    result = cli("insert", "yolo11n.yaml", "--plugin", "c1_c2.py:DepthwiseGate", "-m", "DepthwiseGate", "--after", "8",
                 "--no-verify", "--dry-run")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = cli("insert", "yolo11n.yaml", "--plugin", "se_attention.py:SEAttention", "-m", "SEAttention",
                 "--after", "8", "--no-verify", "--dry-run")  # fmt: skip
    assert result.exit_code == 2
    assert result.output == (
        "error: SEAttention names the catalog's SE; the class SEAttention you added is SeAttentionSEAttention: "
        "use -m SeAttentionSEAttention\n"
    )


def test_channel_arg_names_an_unusual_channel_parameter(here):
    result = cli("insert", "yolo11n.yaml", "-m", "odd_name.py:PlanesGate", "--after", "8", "--no-verify", "--dry-run")
    assert result.exit_code == 7
    assert result.output == (
        "error: plugin odd_name.py:PlanesGate: PlanesGate(planes_in, k) has no channel argument (a parameter named "
        "like channel, channels, in_channels, in_planes, dim, c1...); name it with --channel-arg NAME\n"
    )
    out = here / "yolo11n-planes.yaml"
    result = cli("insert", "yolo11n.yaml", "-m", "odd_name.py:PlanesGate", "--channel-arg", "planes_in", "--after",
                 "8", "--imgsz", "128", "-o", out, "--args", "{k: 5}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "attnsurgeon_plugins: [odd_name.py:PlanesGate?channel=planes_in] # plugin" in out.read_text()
    built = ultra.build_model(model_doc.to_plain(model_doc.load(out).data), "n", out.name)
    assert built.model[9].block.conv.weight.shape == (256, 1, 5, 5)


def test_a_whole_file_offers_the_classes_that_keep_the_shape(here):
    result = cli("list", "--no-cost", "--json", "--plugin", "gate_channels.py")
    assert result.exit_code == 0, result.output
    listed = {e["name"]: e for e in json.loads(result.output) if e["category"] == "foreign"}
    # ChannelPart keeps the shape too; Flatten takes no channel argument, so it is a channel-free candidate: list reads
    # the file with ast and never runs it, and the contract refuses Flatten when a model is built with it
    assert sorted(listed) == ["ChannelPart", "GateBlock", "GateChannelsFlatten"]
    assert [a["name"] for a in listed["GateBlock"]["args"]] == ["reduction_ratio", "pool_types", "no_spatial"]
    assert listed["GateBlock"]["yaml"] == "- [-1, 1, GateBlock, []]"


def test_check_module_takes_file_and_class(here):
    result = cli("check-module", "c1_c2.py:DepthwiseGate", "--no-models", "--json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)["c1_c2.py:DepthwiseGate"]
    constructor = next(c for c in checks if c["name"] == "constructor")
    assert (
        constructor["detail"]
        == "c1, c2 = the input channels; DepthwiseGate(c1=<input channels>, c2=<input channels>, k = 3)"
    )
    assert all(c["ok"] is not False for c in checks)
    result = cli("check-module", "strided.py:DownAttention", "--no-models", "--json")
    assert result.exit_code == 9


def write_all(folder: Path) -> list[Path]:
    """Every inserted module's YAML, for the fresh-process test."""
    paths = []
    for file in INSERTED:
        _, cls, args, _ = MODULES[file]
        out = folder / f"yolo11n-{file[:-3]}.yaml"  # beside the class files: a YAML names code only in its folder
        argv = ["insert", "yolo11n.yaml", "-m", f"{file}:{cls}", "--after", "8", "--no-verify", "-o", out]
        result = cli(*argv, *(["--args", args] if args else []), "--force")
        assert result.exit_code == 0, result.output
        paths.append(out)
    return paths


FRESH = """
import sys
from ultralytics import YOLO
for path in sys.argv[1:]:
    model = YOLO(path)
    layer = model.model.model[9]
    model.save(path[:-5] + ".pt")
    print(type(layer).__name__, sum(p.numel() for p in model.model.parameters()))
"""
RELOAD = """
import sys
from ultralytics import YOLO
for path in sys.argv[1:]:
    model = YOLO(path[:-5] + ".pt")
    print(type(model.model.model[9]).__name__, sum(p.numel() for p in model.model.parameters()))
"""


def test_the_yamls_build_in_a_fresh_process_and_checkpoints_reload_safely(here, tmp_path, one_thread):
    written = write_all(here)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("ATTNSURGEON_AUTOLOAD", None)
    built = subprocess.run([sys.executable, "-c", FRESH, *map(str, written)], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    names = [MODULES[f][3][0] for f in INSERTED]
    assert [line.split()[0] for line in built.stdout.splitlines()] == names
    reloaded = subprocess.run([sys.executable, "-c", RELOAD, *map(str, written)], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert reloaded.returncode == 0, reloaded.stderr[-2000:]
    assert reloaded.stdout == built.stdout
    # weights_only=True with an allow-list: the adapters and the files' classes are on it. SqueezeGate keeps
    # torch.sigmoid as an attribute, a global no allow-list takes, so it loads only the ordinary way.
    safe = [p for p, f in zip(written, INSERTED, strict=True) if f != "timm_style.py"]
    reloaded = subprocess.run([sys.executable, "-c", RELOAD, *map(str, safe)], capture_output=True, text=True,
                              env={**env, "ULTRALYTICS_SAFE_LOAD": "1"}, cwd=tmp_path, timeout=300)  # fmt: skip
    assert reloaded.returncode == 0, reloaded.stderr[-2000:]
    assert len(reloaded.stdout.splitlines()) == len(safe) == len(INSERTED) - 1
