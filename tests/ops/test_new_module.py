"""new-module writes a module and a test that, unchanged, pass check-module, ruff and their own test, and insert at
once; check-module prints the contract as a pass/fail table with reasons; the template ships in the package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from plugin_files import gate_plugin
from test_interop import REPO, ok, python, run
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
CHECKS = [
    "metadata and defaults",
    *(f"shape {h}x{w}" for h, w in ((1, 1), (7, 7), (8, 8), (15, 20), (20, 20), (40, 40), (80, 80))),
    "float32 (cpu)",
    "bfloat16 (cpu)",
    "float16 (cuda)",
    "gradients",
    "eval determinism",
    "batch independence (eval)",
    "reserved names (i, f, type, np)",
    "ONNX export parity",
    "cost at C=256, 20x20",
]


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def made(tmp_path, clean_registry) -> Path:
    result = cli("new-module", "MyAttention", "--dir", tmp_path, "--category", "spatial")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"wrote {tmp_path}/my_attention.py and {tmp_path}/test_my_attention.py\n"
        "next: edit forward() and the metadata, then run\n"
        f"  attnsurgeon check-module --plugin {tmp_path}/my_attention.py\n"
        f"  python -m pytest {tmp_path}/test_my_attention.py\n"
        f"  attnsurgeon insert yolo11n.yaml -m MyAttention --after 8 --plugin {tmp_path}/my_attention.py\n"
    )
    return tmp_path


def test_generated_module_registers_with_every_metadata_field(made):
    result = cli("info", "MyAttention", "--json", "--plugin", made / "my_attention.py")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["category"] == "spatial" and info["yaml"] == "- [-1, 1, MyAttention, [16]]"
    assert info["args"][0]["name"] == "reduction" and info["args"][0]["help"].startswith("channel reduction ratio")
    assert info["link"].startswith("https://") and info["reference"].startswith("https://")
    source = (made / "my_attention.py").read_text()
    for field in ("category=", "paper=", "venue=", "year=", "link=", "reference=", "aliases=", "deviations=",
                  "constraints=", "arg_help="):  # fmt: skip
        assert f"    {field}" in source, field
    assert "def __init__(self, c1: int, reduction: int = 16) -> None:" in source


def test_new_module_never_overwrites_and_checks_the_name(made):
    before = (made / "my_attention.py").read_text()
    result = cli("new-module", "MyAttention", "--dir", made)
    assert result.exit_code == 8
    assert result.output == (
        f"error: {made}/my_attention.py exists; new-module never overwrites (choose another name or --dir)\n"
    )
    assert (made / "my_attention.py").read_text() == before
    cases = {
        "my_attention": "module name 'my_attention' must be a class name: a capital letter, then letters and digits; "
        "e.g. MyAttention",
        "SE": "module name 'SE' is taken by the built-in module SE; choose another name",
        "SEBlock": "module name 'SEBlock' is taken by the built-in module SE; choose another name",
        "Concat": "module name 'Concat' is an Ultralytics name; YAML rows would build Ultralytics' class",
    }
    for name, message in cases.items():
        result = cli("new-module", name, "--dir", made)
        assert (result.exit_code, result.output) == (2, f"error: {message}\n"), name
    (made / "a_file").write_text("")
    result = cli("new-module", "Other", "--dir", made / "a_file" / "mods")
    assert (result.exit_code, result.output) == (
        8,
        f"error: --dir {made / 'a_file' / 'mods'}: {made / 'a_file'} is a file, not a folder\n",
    )
    assert not (made / "other.py").exists()


def test_a_missing_dir_is_made_as_mkdir_p_would(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("new-module", "Other", "--dir", "mymods/attention")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "mymods" / "attention").iterdir()) == ["other.py", "test_other.py"]


def test_generated_files_pass_ruff(made):
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    rules = ["--select", "E,F,W,I,UP,B,SIM,RUF,ANN001,ANN201,ANN202", "--line-length", "120"]
    ok(subprocess.run([ruff, "check", "--isolated", *rules, "."], cwd=made, capture_output=True, text=True))
    check = [ruff, "format", "--isolated", "--line-length", "120", "--check", "."]
    ok(subprocess.run(check, cwd=made, capture_output=True, text=True))


def test_generated_module_passes_check_module_and_inserts_at_once(made, tmp_path):
    plugin = made / "my_attention.py"
    result = cli("check-module", "--plugin", plugin, "--no-models", "--json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)["MyAttention"]
    assert [c["name"] for c in checks] == CHECKS
    assert all(c["ok"] is True for c in checks if c["name"] != "float16 (cuda)")
    out = tmp_path / "yolo11n-MyAttention.yaml"
    result = cli(
        "insert", "yolo11n.yaml", "-m", "MyAttention", "-a", "8", "-o", out, "--imgsz", "64", "--plugin", plugin
    )
    assert result.exit_code == 0, result.output
    assert "✓ train step" in result.output and out.is_file()


def test_check_module_table_names_each_failure(tmp_path, clean_registry):
    plugin = tmp_path / "shrink.py"
    plugin.write_text(gate_plugin("Shrink", body="return x[:, : x.shape[1] // 2]"))
    result = cli("check-module", "--plugin", plugin, "--no-models")
    assert result.exit_code == 9
    rows = {line.split("│")[1].strip(): line.split("│")[2:4] for line in result.output.splitlines() if "│" in line}
    assert [cell.strip() for cell in rows["shape 15x20"]] == [
        "FAIL",
        "changes the shape: (1, 64, 15, 20) -> (1, 32, 15, 20)",
    ]
    assert [cell.strip() for cell in rows["gradients"]] == ["FAIL", "no gradient: fc.weight, fc.bias"]
    cuda = torch.cuda.is_available()  # float16 is checked on CUDA only, where Shrink fails it too
    assert rows["metadata and defaults"][0].strip() == "pass"
    assert rows["float16 (cuda)"][0].strip() == ("FAIL" if cuda else "skip")
    failed = 11 if cuda else 10
    assert result.output.splitlines()[0].rstrip() == f"Shrink: 6 passed, {failed} failed, {int(not cuda)} skipped"
    assert result.output.strip().splitlines()[-1] == (
        f"error: {failed} check(s) failed; first: Shrink shape 1x1: changes the shape: (1, 64, 1, 1) -> (1, 32, 1, 1)"
    )


def test_check_module_on_a_builtin_and_without_a_name(clean_registry):
    result = cli("check-module", "SE", "--no-models", "--json")
    assert result.exit_code == 0, result.output
    assert [c["name"] for c in json.loads(result.output)["SE"]] == CHECKS
    result = cli("check-module")
    assert (result.exit_code, result.output) == (
        2,
        "error: name a module (attnsurgeon check-module SE) or give a plugin (--plugin my_module.py)\n",
    )


@pytest.mark.slow
def test_generated_test_passes_and_full_check_module(made):
    ok(run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_attention.py"], made))
    result = cli("check-module", "MyAttention", "--plugin", made / "my_attention.py", "--json")
    assert result.exit_code == 0, result.output
    names = [c["name"] for c in json.loads(result.output)["MyAttention"]]
    assert "in yolo11n at n: build, forward, train" in names and "in yolo11n at s: build, forward, train" in names


def _project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for folder in ("attnsurgeon", "templates"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.slow
def test_installed_wheel_finds_the_template_through_the_package(tmp_path):
    project = _project(tmp_path / "src")
    pip = [sys.executable, "-m", "pip"]
    ok(run([*pip, "wheel", str(project), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "w")], tmp_path))
    (wheel,) = (tmp_path / "w").glob("attnsurgeon-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"attnsurgeon/templates/module.py.tmpl", "attnsurgeon/templates/test_module.py.tmpl"} <= set(names)
    site = tmp_path / "site"
    ok(run([*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)], tmp_path))
    shutil.rmtree(project)  # no source checkout to fall back on
    work = tmp_path / "work"
    work.mkdir()
    code = f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        from attnsurgeon.ops import scaffold
        print(scaffold.template_dir())
        from attnsurgeon.cli import main
        sys.argv = ["attnsurgeon", "new-module", "Wheeled"]
        main()
        """
    out = ok(python(code, work, PYTHONPATH=""))
    assert out.splitlines()[0] == str(site / "attnsurgeon" / "templates")
    assert (work / "wheeled.py").is_file() and (work / "test_wheeled.py").is_file()


@pytest.mark.slow
def test_editable_install_serves_the_template_from_the_checkout(tmp_path):
    project = _project(tmp_path / "src")
    dist = tmp_path / "dist"
    code = f"from setuptools import build_meta; print(build_meta.build_editable({str(dist)!r}))"
    name = ok(run([sys.executable, "-c", code], project)).strip().splitlines()[-1]
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(dist / name).extractall(unpacked)
    (finder,) = unpacked.glob("__editable___*_finder.py")
    code = f"""
        import importlib.util, sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
        spec = importlib.util.spec_from_file_location("fresh_finder", {str(finder)!r})
        finder = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(finder)
        finder.install()
        from attnsurgeon.ops import scaffold
        print(scaffold.__file__)
        print(scaffold.template_dir())
        """
    lines = ok(python(code, tmp_path, PYTHONPATH="")).splitlines()
    assert lines == [str(project / "attnsurgeon" / "ops" / "scaffold.py"), str(project / "templates")]
