"""Plugins: a user's own module file (--plugin) joins list, info, insert, show and profile like a built-in; bad
plugins are one-line errors naming the plugin and the rule; installed packages' modules come in by entry point, and a
broken one is a warning that leaves the built-in catalog working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_files import gate_plugin
from typer.testing import CliRunner

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def gate(tmp_path, clean_registry, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "gate.py"
    path.write_text(gate_plugin())
    return path


@pytest.mark.parametrize(
    "command", ["insert", "replace", "remove", "list", "info", "show", "profile", "check-module", "adopt"]
)
def test_every_command_that_resolves_modules_takes_plugin(command):
    result = cli(command, "--help")
    assert result.exit_code == 0, result.output
    assert "--plugin" in result.output and "PATH.py" in result.output


def test_plugin_module_is_listed_and_described(gate):
    result = cli("list", "--no-cost", "--json", "--plugin", gate)
    assert result.exit_code == 0, result.output
    entry = next(e for e in json.loads(result.output) if e["name"] == "TestGate")
    assert entry["args"] == [{"name": "reduction", "default": 4, "required": False, "type": "int", "help": ""}]
    assert entry["paper"] == "Squeeze-and-Excitation Networks" and entry["yaml"] == "- [-1, 1, TestGate, [4]]"
    result = cli("info", "testgate", "--plugin", gate)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("TestGate — A channel gate from pooled features.\n")
    assert "YAML: - [-1, 1, TestGate, [4]]" in result.output


def test_without_the_flag_the_module_is_unknown(gate):
    result = cli("info", "TestGate")
    assert result.exit_code == 5
    assert result.output.startswith("error: unknown module 'TestGate'; ")


def test_insert_records_the_plugin_in_the_yaml(gate, tmp_path):
    (tmp_path / "models").mkdir()
    out = tmp_path / "models" / "yolo11n-gate.yaml"
    result = cli("insert", "yolo11n.yaml", "-m", "TestGate", "-a", "8", "-o", out, "--no-verify", "--plugin", gate)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert "attnsurgeon_plugins: [../gate.py] # plugin files of this model's modules (see attnsurgeon)" in lines
    assert lines[lines.index("nc: 80 # number of classes") + 1].startswith("attnsurgeon_plugins:")
    assert "  - [-1, 1, TestGate, [4]] # 9 TestGate (attnsurgeon)" in lines
    # A second surgery on that YAML keeps the plugin (relative to the new output) and needs no flag.
    again = tmp_path / "yolo11n-gate-SE.yaml"
    result = cli("insert", out, "-m", "SE", "-a", "4", "-o", again, "--no-verify")
    assert result.exit_code == 0, result.output
    assert model_doc.load(again).data["attnsurgeon_plugins"] == ["gate.py"]


def test_replace_with_a_plugin_module_records_it(gate, tmp_path):
    se = tmp_path / "yolo11n-SE.yaml"
    assert cli("insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", se, "--no-verify").exit_code == 0
    out = tmp_path / "yolo11n-gate.yaml"
    result = cli("replace", se, "--at", "9", "-m", "TestGate", "-o", out, "--no-verify", "--plugin", gate)
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert "attnsurgeon_plugins: [gate.py] # plugin files of this model's modules (see attnsurgeon)" in lines
    assert "  - [-1, 1, TestGate, [4]] # 9 TestGate (attnsurgeon)" in lines


def test_show_and_profile_build_a_yaml_that_records_its_plugin(gate, tmp_path):
    out = tmp_path / "yolo11n-gate.yaml"
    assert (
        cli("insert", "yolo11n.yaml", "-m", "TestGate", "-a", "8", "-o", out, "--no-verify", "--plugin", gate).exit_code
        == 0
    )
    os.chdir(tmp_path.parent)  # the recorded path is relative to the YAML, not to the working directory
    result = cli("show", out, "--json")
    assert result.exit_code == 0, result.output
    layer = json.loads(result.output)["layers"][9]
    assert layer["module"] == "TestGate" and layer["out_channels"] == 256 and layer["params"] == 256 * 256 + 256
    result = cli("profile", out, "--imgsz", "64", "--runs", "1", "--json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "plugin {p}: no such file (attnsurgeon new-module NAME writes one)"),
        ("def broken(:\n", "plugin {p}: syntax error at line 1: invalid syntax"),
        (
            "import torch\n\nclass Gate(torch.nn.Module):\n    pass\n",
            "plugin {p}: registers no module and offers no attention class; its classes: Gate (no forward) "
            "(decorate a class with @register_module(...) from attnsurgeon.catalog, or "
            "name one: FILE.py:ClassName)",
        ),
        (
            gate_plugin("SE"),
            "plugin {p}: module 'SE' is taken by the built-in module SE; rename it (register_module(name=...))",
        ),
        (
            gate_plugin(extra=', aliases=("SEBlock",)'),
            "plugin {p}: alias 'SEBlock' of TestGate is taken by an alias of the built-in module SE; rename it "
            "(register_module(name=...))",
        ),
        (
            gate_plugin("C2f"),
            "plugin {p}: module 'C2f' is an Ultralytics module name; rename it (register_module(name=...))",
        ),
        (
            gate_plugin(extra=', name="IdentityInit"'),
            "plugin {p}: module 'IdentityInit' is attnsurgeon's IdentityInit layer; rename it "
            "(register_module(name=...))",
        ),
        (
            gate_plugin(init="channels: int, reduction: int = 4"),
            "plugin {p}: bad.py:TestGate: the constructor must take input channels first: "
            "__init__(self, c1, *hyper-parameters with defaults)",
        ),
    ],
    ids=["missing", "syntax", "nothing", "builtin-name", "builtin-alias", "ultralytics-name", "wrapper-name", "no-c1"],
)
def test_bad_plugin_is_one_line_naming_plugin_and_rule(tmp_path, clean_registry, source, message):
    path = tmp_path / "bad.py"
    if source is not None:
        path.write_text(source)
    for command in (
        ["list", "--no-cost"],
        ["info", "SE"],
        ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"],
    ):
        result = cli(*command, "--plugin", path)
        assert result.exit_code == 7, result.output
        assert result.output == f"error: {message.format(p=path)}\n"


def test_plugin_that_changes_the_shape_is_refused_by_insert(tmp_path, clean_registry):
    path = tmp_path / "shrink.py"
    path.write_text(gate_plugin("Shrink", body="return x[:, : x.shape[1] // 2]"))
    out = tmp_path / "out.yaml"
    result = cli("insert", "yolo11n.yaml", "-m", "Shrink", "-a", "8", "-o", out, "--plugin", path)
    assert result.exit_code == 7, result.output
    assert result.output == (
        f"error: plugin {path.resolve()}: Shrink changes the shape: (1, 64, 15, 20) -> (1, 32, 15, 20); an attention "
        "module must return a tensor shaped like its input ('attnsurgeon check-module' runs every check)\n"
    )
    assert not out.exists()


def test_two_plugins_with_one_name_clash(tmp_path, clean_registry):
    (tmp_path / "a.py").write_text(gate_plugin())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "a.py").write_text(gate_plugin())
    result = cli("list", "--no-cost", "--plugin", tmp_path / "a.py", "--plugin", tmp_path / "b" / "a.py")
    assert result.exit_code == 7
    assert result.output == (
        f"error: plugin {tmp_path / 'b' / 'a.py'}: module 'TestGate' is taken by {tmp_path / 'a.py'}'s module "
        "TestGate; rename it (register_module(name=...))\n"
    )


# --------------------------------------------------------------------------------------------------------------------
# Installed packages: the attnsurgeon.modules entry-point group, in a fresh process


def installed_package(root: Path, name: str, source: str) -> Path:
    """A site directory holding a package ``name`` that declares ``name`` in the attnsurgeon.modules group."""
    site = root / f"site-{name}"
    site.mkdir()
    (site / f"{name}.py").write_text(source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[attnsurgeon.modules]\n{name} = {name}\n")
    return site


def run_cli(args: list[str], cwd: Path, sites: list[Path]) -> subprocess.CompletedProcess:
    path = os.pathsep.join([*map(str, sites), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(cwd / ".cfg")}
    code = "from attnsurgeon.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_entry_point_modules_appear_everywhere_and_a_broken_one_is_a_warning(tmp_path):
    good = installed_package(tmp_path, "goodgate", gate_plugin("PackagedGate"))
    broken = installed_package(tmp_path, "brokengate", gate_plugin("SE"))  # clashes with a built-in
    result = run_cli(["list", "--no-cost", "--json"], tmp_path, [good, broken])
    assert result.returncode == 0, result.stderr
    names = [e["name"] for e in json.loads(result.stdout)]
    assert sorted(names) == sorted([*REGISTRY._builtins(), "PackagedGate"])
    warning = (
        "warning: plugin entry point 'brokengate' (brokengate): module 'SE' is taken by the built-in module SE; "
        "rename it (register_module(name=...)); skipped"
    )
    assert " ".join(result.stderr.split()) == warning
    out = tmp_path / "yolo11n-packaged.yaml"
    result = run_cli(
        ["insert", "yolo11n.yaml", "-m", "PackagedGate", "-a", "8", "-o", str(out), "--imgsz", "64"], tmp_path, [good]
    )
    assert result.returncode == 0, result.stderr
    assert "attnsurgeon_plugins" not in out.read_text()  # an installed module needs no file: the entry point finds it
    code = textwrap.dedent(
        f"""
        from ultralytics import YOLO
        print(type(YOLO({str(out)!r}).model.model[9]).__name__)
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(good), str(broken), os.environ.get("PYTHONPATH", "")]),
        "YOLO_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "PackagedGate"  # the broken package is skipped with a warning:
    assert "RuntimeWarning: attnsurgeon: plugin entry point 'brokengate' (brokengate): module 'SE' is taken" in (
        " ".join(done.stderr.split())
    )


def test_plugins_cost_no_torch_where_no_model_is_needed(tmp_path):
    (tmp_path / "gate.py").write_text(gate_plugin())
    code = textwrap.dedent(
        """
        import sys
        from attnsurgeon.cli import app
        for args in (["list", "--no-cost", "--plugin", "gate.py"], ["info", "TestGate", "--plugin", "gate.py"],
                     ["insert", "yolo11n.yaml", "-m", "TestGate", "-a", "8", "--no-verify", "--plugin", "gate.py"]):
            try:
                app(args)
            except SystemExit as exit:
                assert not exit.code, (args, exit.code)
        print("torch" in sys.modules, "ultralytics" in sys.modules, file=sys.stderr)
        """
    )
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.split() == ["False", "False"]
    assert (tmp_path / "yolo11n-TestGate.yaml").is_file()
