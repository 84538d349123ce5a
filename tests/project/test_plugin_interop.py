"""A YAML that uses a plugin module, and a checkpoint trained with one, in processes that never import attnsurgeon's
CLI: plain ``YOLO()``, ``ULTRALYTICS_SAFE_LOAD=1``, ``yolo train`` and the script a multi-GPU worker runs.

The one mechanism: the YAML lists its plugin files under ``attnsurgeon_plugins`` (relative to the YAML) and the
auto-registration hook loads them before ``parse_model``; a checkpoint pickles a plugin module as (plugin path,
class). Where the plugin cannot be found, the error names the module and the plugin.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from plugin_files import gate_plugin
from test_interop import BIN, last_json, make_dataset, ok, python, run, train_overrides, yolo_cli_args


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """models/plugins/gate.py, models/yolo11n-gate.yaml written by ``attnsurgeon insert --plugin``, and gate.pt (a
    YAML names plugin files only inside its own folder)."""
    tmp = tmp_path_factory.mktemp("plugin-interop")
    (tmp / "models" / "plugins").mkdir(parents=True)
    (tmp / "models" / "plugins" / "gate.py").write_text(gate_plugin())
    args = ["insert", "yolo11n.yaml", "-m", "TestGate", "-a", "8", "-o", "models/yolo11n-gate.yaml", "--no-verify"]
    ok(run([str(BIN / "attnsurgeon"), *args, "--plugin", "models/plugins/gate.py"], tmp))
    built = last_json(
        ok(
            python(
                """
                import json
                from ultralytics import YOLO
                model = YOLO("models/yolo11n-gate.yaml")
                model.save("gate.pt")
                layer = model.model.model[9]
                print(json.dumps([type(layer).__name__, layer.fc.in_channels]))
                """,
                tmp,
            )
        )
    )
    assert built == ["TestGate", 256]
    return tmp


def test_the_yaml_names_its_plugin_relative_to_itself(work):
    text = (work / "models" / "yolo11n-gate.yaml").read_text()
    assert "attnsurgeon_plugins: [plugins/gate.py]" in text


@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_checkpoint_loads_in_a_fresh_process_elsewhere(work, tmp_path, safe_load):
    code = f"""
        import json, torch
        from ultralytics import YOLO
        model = YOLO({str(work / "gate.pt")!r}).model.eval()
        with torch.inference_mode():
            out = model(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))[0]
        print(json.dumps([type(model.model[9]).__name__, float(out.abs().sum())]))
        """
    name, total = last_json(ok(python(code, tmp_path, ULTRALYTICS_SAFE_LOAD=safe_load)))
    assert name == "TestGate" and total > 0


def test_a_missing_plugin_is_an_error_naming_module_and_plugin(work, tmp_path):
    shutil.copy(work / "models" / "yolo11n-gate.yaml", tmp_path / "yolo11n-gate.yaml")  # without plugins/gate.py
    result = python("from ultralytics import YOLO; YOLO('yolo11n-gate.yaml')", tmp_path)
    assert result.returncode != 0 and "KeyError" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "attnsurgeon.errors.PluginError: this model needs TestGate from the plugin gate.py (listed under "
        f"attnsurgeon_plugins), which is not at {tmp_path / 'plugins' / 'gate.py'}; put the file there"
    )
    # without the key, the error says how to record it
    text = (tmp_path / "yolo11n-gate.yaml").read_text().replace("attnsurgeon_plugins:", "unused_key:")
    (tmp_path / "yolo11n-gate.yaml").write_text(text)
    result = python("from ultralytics import YOLO; YOLO('yolo11n-gate.yaml')", tmp_path)
    assert result.stderr.strip().splitlines()[-1] == (
        "attnsurgeon.errors.PluginError: module 'TestGate' is neither an Ultralytics module nor in attnsurgeon's "
        "catalog; if it comes from a plugin file, list the file under 'attnsurgeon_plugins:' in the YAML "
        "('attnsurgeon insert --plugin FILE.py' writes that)"
    )


def test_a_checkpoint_whose_plugin_moved(work, tmp_path):
    moved = tmp_path / "moved"
    plugins = work / "models" / "plugins"
    shutil.copytree(plugins, moved)
    shutil.copy(work / "gate.pt", tmp_path / "gate.pt")
    (plugins / "gate.py").rename(plugins / "gate.py.away")
    try:
        result = python("from ultralytics import YOLO; YOLO('gate.pt')", tmp_path)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines()[-1] == (
            f"attnsurgeon.errors.PluginError: module TestGate needs the plugin gate.py, which is neither at "
            f"{plugins / 'gate.py'} nor in the current directory; put gate.py in one of those places"
        )
        shutil.copy(moved / "gate.py", tmp_path / "gate.py")  # in the current directory: found
        code = "from ultralytics import YOLO; print(type(YOLO('gate.pt').model.model[9]).__name__)"
        assert ok(python(code, tmp_path)).strip().splitlines()[-1] == "TestGate"
    finally:
        (plugins / "gate.py.away").rename(plugins / "gate.py")


@pytest.mark.slow
def test_yolo_train_and_a_multi_gpu_worker_script(work):
    """``yolo train`` on the plugin YAML; its last.pt loads elsewhere; and the script Ultralytics writes for each
    multi-GPU worker (generate_ddp_file, run here as one CPU process) builds and trains the same YAML."""
    data = make_dataset(work / "data")
    args = yolo_cli_args("models/yolo11n-gate.yaml", train_overrides(data, work / "runs"))
    ok(run([str(BIN / "yolo"), "train", *args], work, timeout=600))
    last = work / "runs" / "run" / "weights" / "last.pt"
    code = f"from ultralytics import YOLO; print(type(YOLO({str(last)!r}).model.model[9]).__name__)"
    assert ok(python(code, work.parent, ULTRALYTICS_SAFE_LOAD="1")).strip().splitlines()[-1] == "TestGate"

    overrides = {**train_overrides(data, work / "ddp"), "model": "models/yolo11n-gate.yaml"}
    script = (
        ok(
            python(
                f"""
            import pickle, sys
            sys.modules["cloudpickle"] = pickle  # not installed here; plain pickle writes the same state
            from ultralytics.utils import checks
            checks.check_requirements = lambda *a, **k: True
            from ultralytics.models.yolo.detect import DetectionTrainer
            from ultralytics.utils import dist
            trainer = DetectionTrainer(overrides={overrides!r})
            trainer.callbacks = {{event: [] for event in trainer.callbacks}}  # lambdas: cloudpickle only
            dist.check_requirements = lambda *a, **k: True
            print(dist.generate_ddp_file(trainer))
            """,
                work,
            )
        )
        .strip()
        .splitlines()[-1]
    )
    ok(run([sys_executable(), script], work, timeout=600))
    weights = work / "ddp" / "run" / "weights" / "last.pt"
    code = f"import torch; print(type(torch.load({str(weights)!r}, weights_only=False)['model'].model[9]).__name__)"
    assert ok(python(code, work)).strip().splitlines()[-1] == "TestGate"


def sys_executable() -> str:
    import sys

    return sys.executable
