"""Hostile plugin entries: a model file the user only reads never runs code, and names plugin files only inside its
own folder (issue 26).

Every file here writes a marker file when it is imported, so a test sees whether its code ran. The commands that
build no model (``show --no-build``, ``insert --no-verify``, ``--dry-run`` without verification, ``list``, ``info``,
``adopt --dry-run --no-verify``) must leave no marker; a command that builds does import the files its model uses,
and says so (``imported``). An entry outside the YAML's folder (absolute, or ``../``) is one line naming it and the
way to use it on purpose (``--plugin``), with no marker and nothing written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_files import gate_plugin
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
MARK = "from pathlib import Path as _P\n_P(__file__).with_suffix('.ran').write_text('ran')\n"
PLAIN = (
    MARK
    + """
import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self, channels, reduction=4):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))
"""
)
MODEL = """\
nc: 2
attnsurgeon_plugins: [{entry}]
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, {module}, []]
head:
  - [[1], 1, Detect, [nc]]
"""


def cli(*args: object):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def ran(folder: Path) -> list[str]:
    """The marker files left under ``folder``: whose code ran."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.ran"))


@pytest.fixture
def here(tmp_path, monkeypatch, clean_registry):
    """A downloaded folder: ``dl/`` with model YAMLs and their plugin files, and files elsewhere (``elsewhere/``,
    the current folder) that a YAML must not reach."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dl" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    for folder in (tmp_path / "dl", tmp_path / "dl" / "sub", tmp_path / "elsewhere", tmp_path):
        (folder / "helper.py").write_text(MARK + gate_plugin())
        (folder / "plain.py").write_text(PLAIN)
    return tmp_path


def model(here: Path, entry: str, module: str = "TestGate", name: str = "g.yaml") -> Path:
    path = here / "dl" / name
    path.write_text(MODEL.format(entry=entry, module=module))
    return path


# (entry in the YAML, module of its row, command, exit code, the error line or None)
READ_ONLY = [
    ("helper.py", "TestGate", ["show", "{yaml}", "--no-build"], 0, None),
    ("plain.py:Gate", "Gate", ["show", "{yaml}", "--no-build"], 0, None),
    ("sub/helper.py", "TestGate", ["show", "{yaml}", "--no-build"], 0, None),
    ("sub/../plain.py:Gate", "Gate", ["show", "{yaml}", "--no-build", "--json"], 0, None),
    ("helper.py", "TestGate", ["insert", "{yaml}", "-m", "SE", "-a", "0", "--no-verify", "--dry-run"], 0, None),
    ("plain.py:Gate", "Gate", ["insert", "{yaml}", "-m", "SE", "-a", "0", "--no-verify", "--dry-run"], 0, None),
    ("plain.py:Gate", "Gate", ["insert", "{yaml}", "-m", "ECA", "-a", "0", "--no-verify", "-o", "out-n.yaml"], 0, None),
    ("plain.py:Gate", "Gate", ["remove", "{yaml}", "--at", "1", "--no-verify", "--dry-run"], 0, None),
    ("plain.py:Gate", "Gate", ["replace", "{yaml}", "--at", "1", "-m", "SE", "--no-verify", "--dry-run"], 0, None),
    ("plain.py:Gate", "Gate", ["adopt", "{yaml}", "--no-verify", "--dry-run"], 0, None),
]
OUTSIDE = "is outside the YAML's folder, and a model file may name plugin files only inside its own folder"
REFUSED = [
    ("{abs}/elsewhere/helper.py", "TestGate", "{abs}/elsewhere/helper.py"),
    ("{abs}/elsewhere/plain.py:Gate", "Gate", "{abs}/elsewhere/plain.py"),
    ("../elsewhere/helper.py", "TestGate", "{abs}/elsewhere/helper.py"),
    ("../plain.py:Gate", "Gate", "{abs}/plain.py"),
    ("sub/../../helper.py", "TestGate", "{abs}/helper.py"),
    ("../plain.py:Gate?channel=channels", "Gate", "{abs}/plain.py"),
]


@pytest.mark.parametrize(("entry", "module", "command", "code", "line"), READ_ONLY)
def test_reading_a_model_file_runs_none_of_its_files(here, entry, module, command, code, line):
    yaml = model(here, entry, module)
    result = cli(*[a.format(yaml=yaml) for a in command])
    assert result.exit_code == code, result.output
    assert ran(here) == [], "a command that builds no model imported a file"
    assert "imported:" not in result.output


@pytest.mark.parametrize(("entry", "module", "named"), REFUSED)
@pytest.mark.parametrize("command", [["show", "{yaml}", "--no-build"], ["insert", "{yaml}", "-m", "SE", "-a", "0"]])
def test_an_entry_outside_the_yamls_folder_is_one_line(here, entry, module, named, command):
    yaml = model(here, entry.format(abs=here), module)
    before = sorted(p.name for p in here.rglob("*"))
    result = cli(*[a.format(yaml=yaml) for a in command])
    assert result.exit_code == 7, result.output
    shown = entry.format(abs=here)
    path = named.format(abs=here)
    assert result.output == (
        f"error: g.yaml: its attnsurgeon_plugins entry {shown!r} {OUTSIDE}; to use it on purpose, name it yourself: "
        f"--plugin {path} (in Python: attnsurgeon.sources.add_files([{path!r}]) before building)\n"
    )
    assert ran(here) == [] and sorted(p.name for p in here.rglob("*")) == before


def test_the_user_may_name_an_outside_file_on_purpose(here):
    yaml = model(here, str(here / "elsewhere" / "plain.py") + ":Gate", "Gate")
    result = cli("show", yaml, "--no-build", "--plugin", here / "elsewhere" / "plain.py:Gate")
    assert result.exit_code == 0, result.output
    assert ran(here) == []


def test_a_file_in_the_current_folder_is_not_found_for_a_yaml(here):
    (here / "dl" / "helper.py").unlink()  # only the current folder has one now
    yaml = model(here, "helper.py")
    result = cli("show", yaml, "--no-build")
    assert result.exit_code == 7
    assert result.output == (
        f"error: this model needs TestGate from the plugin helper.py (listed under attnsurgeon_plugins), which is not "
        f"at {here / 'dl' / 'helper.py'}; put the file there\n"
    )
    assert ran(here) == []


def test_a_plugin_whose_registrations_are_code_is_not_run_for_a_yaml(here):
    text = MARK + gate_plugin(extra=', aliases=tuple(["Gate" + "X"])')  # not literals: only running it tells
    (here / "dl" / "helper.py").write_text(text)
    result = cli("show", model(here, "helper.py"), "--no-build")
    assert result.exit_code == 7
    assert "its @register_module arguments are not literals" in result.output
    assert result.output.count("\n") == 1 and ran(here) == []


@pytest.mark.parametrize(
    "command",
    [
        ["list", "--no-cost", "--plugin", "{file}"],
        ["info", "SE", "--plugin", "{file}"],
        ["insert", "yolo11n.yaml", "-m", "Gate", "-a", "8", "--no-verify", "--dry-run", "--plugin", "{file}"],
        ["insert", "yolo11n.yaml", "-m", "{file}", "-a", "8", "--no-verify", "--dry-run"],
    ],
    ids=["list", "info", "insert-plugin", "insert-module"],
)
def test_a_class_named_on_the_command_line_runs_only_when_a_model_is_built(here, command):
    file = "dl/plain.py" if command[0] in ("list", "info") or "--plugin" in command else "dl/plain.py:Gate"
    result = cli(*[a.format(file=file) for a in command])
    assert result.exit_code == 0, result.output
    assert ran(here) == []


def test_building_imports_the_files_the_model_uses_and_names_them(here):
    yaml = model(here, "plain.py:Gate", "Gate", name="g-n.yaml")
    result = cli("insert", yaml, "-m", "SE", "-a", "0", "--imgsz", "64", "--json", "-o", "out-n.yaml")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["imported"] == [str(here / "dl" / "plain.py")]
    assert ran(here) == ["dl/plain.ran"]  # the one file the model uses, not the others beside it


def test_plain_ultralytics_refuses_an_outside_entry_naming_it(here):
    """The autoload hook in a process that never imports attnsurgeon's CLI: the same rule, the entry named."""
    yaml = model(here, "../elsewhere/plain.py:Gate", "Gate")
    code = f"from ultralytics import YOLO\nYOLO({str(yaml)!r})"
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=here, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    entry = "'../elsewhere/plain.py:Gate'"
    assert last.startswith(f"attnsurgeon.errors.PluginError: g.yaml: its attnsurgeon_plugins entry {entry} is outside")
    assert ran(here) == []


FORK_YAML = """\
nc: 80
scales:
  n: [0.50, 0.25, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 3, C2f_Attention, [128, True]]
head:
  - [[2], 1, Detect, [nc]]
"""
DECOY = "fork/ultralytics/nn/aaa_old/attention.py"  # sorts before extra_modules/: the first file by path


@pytest.fixture
def fork(tmp_path, monkeypatch, clean_registry):
    """The fork of test_adopt_fork_classes (block.py star-imports ..extra_modules.attention), its attention file
    leaving a marker when imported, and an older Attention elsewhere in the fork that block.py does not import."""
    from test_adopt_fork_classes import ATTENTION_FILE, write_fork

    monkeypatch.chdir(tmp_path)
    write_fork(tmp_path)
    attention = tmp_path / ATTENTION_FILE
    attention.write_text(MARK + attention.read_text())
    (tmp_path / DECOY).parent.mkdir(parents=True)
    (tmp_path / DECOY).write_text(MARK + "class Attention:\n    def __init__(self, width):\n        pass\n")
    (tmp_path / "yolo-fork-n.yaml").write_text(FORK_YAML)
    return tmp_path


def test_adopt_reads_the_fork_and_maps_the_class_its_block_imports(fork):
    from test_adopt_fork_classes import ATTENTION_FILE

    result = cli("adopt", "yolo-fork-n.yaml", "--fork", "fork", "--no-verify", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"({ATTENTION_FILE}:Attention, used as the module Attention)" in result.output  # not the decoy
    assert ran(fork) == []  # read with ast: neither file ran
    written = cli("adopt", "yolo-fork-n.yaml", "--fork", "fork", "--imgsz", "64", "--json")
    assert written.exit_code == 0, written.output
    assert json.loads(written.output)["imported"] == [str(fork / ATTENTION_FILE)]  # verification imports it
    assert ran(fork) == [ATTENTION_FILE.replace(".py", ".ran")]


def test_two_definitions_the_imports_do_not_tell_apart_are_one_line(fork):
    block = fork / "fork/ultralytics/nn/modules/block.py"
    block.write_text(block.read_text().replace("from ..extra_modules.attention import *", "import torch"))
    result = cli("adopt", "yolo-fork-n.yaml", "--fork", "fork", "--no-verify")
    assert result.exit_code == 6
    last = result.output.strip().splitlines()[-1]  # adopt shows what it found, then the one-line error
    assert last.startswith("error: yolo-fork-n.yaml: layer 2 [-1, 3, C2f_Attention, [128, True]] cannot be adopted")
    assert f"the fork defines Attention in {DECOY} and fork/ultralytics/nn/extra_modules/attention.py, and " in last
    assert "imports do not say which C2f_Attention uses" in last
    assert ran(fork) == [] and not (fork / "yolo-fork-n-adopted.yaml").exists()
