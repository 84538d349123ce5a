"""Shell completion as bash asks for it: commands, module names and aliases, models, positions, scales."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer._completion_classes import BashComplete

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc

REPO = Path(__file__).resolve().parents[2]


def complete(*words: str) -> list[str]:
    """What bash offers for the last word, given the words before it (the line in COMP_WORDS, as bash sets it)."""
    cli = typer.main.get_command(app)
    completer = BashComplete(cli, {}, "attnsurgeon", "_ATTNSURGEON_COMPLETE")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMP_WORDS", " ".join(("attnsurgeon", *words)))
        return [item.value for item in completer.get_completions(list(words[:-1]), words[-1])]


def test_commands():
    assert set(complete("")) >= {c.name for c in app.registered_commands}
    assert complete("ins") == ["insert"]


def test_module_names_then_aliases_case_insensitive():
    assert complete("info", "") == REGISTRY.names()  # names only until something is typed
    offered = complete("insert", "yolo11n.yaml", "-m", "Hal")
    assert offered[0] == "HaloAttention" and len(offered) > 1  # then the aliases of the same module
    assert all(REGISTRY.find(value).name == "HaloAttention" for value in offered)
    lower = complete("insert", "yolo11n.yaml", "-m", "halo")
    assert lower[0] == "haloAttention" and REGISTRY.find(lower[0]).name == "HaloAttention"  # the typed prefix kept
    assert complete("info", "zzz") == []


def test_after_offers_the_models_layers_and_named_positions():
    offered = complete("insert", "yolo11n.yaml", "-m", "SE", "-a", "")
    indices = [value for value in offered if value.isdigit()]
    assert indices == [str(i) for i in range(23)]  # yolo11n has 24 layers; the last is the Detect head
    try:
        from attnsurgeon.core.positions import POSITION_NAMES
    except ImportError:
        POSITION_NAMES = ()
    for name in POSITION_NAMES:
        if "MODULE" in name:
            assert name.replace("MODULE", "C3k2") in offered
        else:
            assert name in offered
    assert complete("insert", "yolo11n.yaml", "-a", "2") == ["2", "20", "21", "22"]
    assert [v for v in complete("insert", "missing.yaml", "-a", "") if v.isdigit()] == []  # no model, no indices


def test_scales_rewire_category_device():
    assert complete("insert", "yolo11n.yaml", "--scale", "") == ["n", "s", "m", "l", "x", "all"]
    assert complete("show", "yolo11n.yaml", "--scale", "") == ["n", "s", "m", "l", "x"]
    assert complete("insert", "yolo11n.yaml", "--rewire", "") == ["all", "next"]
    assert complete("list", "--category", "ch") == ["channel", "channel+spatial"]
    assert complete("profile", "x.yaml", "--device", "cu") == ["cuda", "cuda:0"]


def test_models_local_files_and_packaged_names(tmp_path, monkeypatch):
    for name in ("a.yaml", "b.pt", "notes.txt", ".hidden.yaml"):
        (tmp_path / name).write_text("")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert complete("show", "") [:3] == ["a.yaml", "b.pt", f"runs{os.sep}"]  # fmt: skip
    assert complete("profile", f"runs{os.sep}") == []
    packaged = complete("show", "yolo11")
    assert {"yolo11n.yaml", "yolo11x.yaml", "yolo11s-seg.yaml", "yolo11m-pose.yaml"} <= set(packaged)
    for name in packaged:  # every name offered is one attnsurgeon (and Ultralytics) resolves
        path, _, is_packaged = model_doc.resolve_model_path(name)
        assert is_packaged and path.is_file(), name


def test_completion_imports_no_torch():
    code = (
        "import sys\nfrom attnsurgeon.cli import app\ntry:\n    app(prog_name='attnsurgeon')\n"
        "except SystemExit:\n    pass\nprint('torch' in sys.modules, 'ultralytics' in sys.modules)"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "_ATTNSURGEON_COMPLETE": "complete_bash",
        "COMP_WORDS": "attnsurgeon insert yolo11n.yaml -m SE -a",
        "COMP_CWORD": "6",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert [word for word in out.split() if word.isdigit()] == [str(i) for i in range(23)]
    assert out.split()[-2:] == ["False", "False"], out


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_script(shell):
    env = {**os.environ, "PYTHONPATH": str(REPO), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "attnsurgeon", "--show-completion", shell], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "_ATTNSURGEON_COMPLETE=complete_" + shell in result.stdout  # the script calls back `attnsurgeon`
