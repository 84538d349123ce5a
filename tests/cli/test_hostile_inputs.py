"""Hostile inputs: names and paths a command must refuse in one line (an exit code per kind of error, nothing
written, no traceback), and help texts whose brackets must survive Rich's rendering.

- A model name with glob wildcards (``*.yaml``, ``yolo?1n.yaml``, ``[y]olo11n.yaml``) is no packaged name: the packaged
  models are found with ``rglob``, which read the wildcards and picked whichever packaged file sorted first.
- ``adopt --fork PATH`` reads the fork with ``ast``: a folder named ``x.py``, a FIFO, a file it cannot read, a binary
  file or one with NUL bytes is named with what is wrong (a FIFO in a folder is not read: reading it never ends).
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()

FORK_YAML = """\
nc: 80
scales:
  n: [0.33, 0.25, 1024]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 3, C2f_EMA, [64, True]]
head:
  - [[1], 1, Detect, [nc]]
"""
NO_FILE = "no such file (nor a packaged Ultralytics model)"
NO_CLASS = "no class C2f_EMA in its Python files"


def _fork_folder(here: Path, *extra: Callable[[Path], object]) -> None:
    """A fork folder ``fork/`` with one Python file that defines no C2f_EMA, and what ``extra`` adds."""
    (here / "fork").mkdir()
    (here / "fork" / "block.py").write_text("class Bottleneck:\n    pass\n")
    for add in extra:
        add(here / "fork")


def _locked(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the user cannot read: chmod 000, and under root (which reads it anyway) an open that is refused."""
    locked = folder / "locked.py"
    locked.write_text("class C2f_EMA:\n    pass\n")
    locked.chmod(0)
    if os.geteuid() == 0:
        real_open = pathlib.Path.open

        def refuse(self: Path, *args: object, **kwargs: object) -> object:
            if self.name == "locked.py":
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(pathlib.Path, "open", refuse)


@dataclass(frozen=True)
class Case:
    id: str
    argv: list[str]
    code: int
    says: str  # what the one line must contain (after "error: ")
    setup: Callable[[Path, pytest.MonkeyPatch], object] = lambda here, mp: None


def adopt(fork: str) -> list[str]:
    return ["adopt", "m-n.yaml", "--no-verify", "--fork", fork]


CASES = [
    Case("show-star", ["show", "*.yaml"], 3, f"*.yaml: {NO_FILE}"),
    Case("insert-star", ["insert", "yolo11*.yaml", "-m", "SE", "--after", "2", "--no-verify"], 3, NO_FILE),
    Case("remove-question-mark", ["remove", "yolo?1n.yaml", "--at", "2", "--no-verify"], 3, f"yolo?1n.yaml: {NO_FILE}"),
    Case("profile-brackets", ["profile", "[y]olo11n.yaml"], 3, f"[y]olo11n.yaml: {NO_FILE}"),
    Case("fork-folder-named-x.py", adopt("x.py"), 2, "--fork x.py: a folder with no .py files",
         lambda here, mp: (here / "x.py").mkdir()),
    Case("fork-with-a-folder-named-x.py-inside", adopt("fork"), 6, f"--fork fork: {NO_CLASS}",
         lambda here, mp: _fork_folder(here, lambda f: (f / "x.py").mkdir())),
    Case("fork-nul-bytes", adopt("nul.py"), 2, "--fork nul.py: has NUL bytes: a binary file, not Python source",
         lambda here, mp: (here / "nul.py").write_bytes(b"class C2f_EMA:\n    pass\x00\n")),
    Case("fork-nul-bytes-in-a-folder", adopt("fork"), 6, f"{NO_CLASS} (not read: fork/nul.py: has NUL bytes",
         lambda here, mp: _fork_folder(here, lambda f: (f / "nul.py").write_bytes(b"class C2f_EMA:\x00\n"))),
    Case("fork-binary", adopt("blob.py"), 2, "--fork blob.py: not Python source this Python reads (line 1",
         lambda here, mp: (here / "blob.py").write_bytes(bytes(range(128, 256)))),
    Case("fork-empty-file", adopt("empty.py"), 6, f"--fork empty.py: {NO_CLASS}",
         lambda here, mp: (here / "empty.py").write_bytes(b"")),
    Case("fork-fifo", adopt("pipe.py"), 2, "--fork pipe.py: not a regular file or folder",
         lambda here, mp: os.mkfifo(here / "pipe.py")),
    Case("fork-fifo-in-a-folder", adopt("fork"), 6, f"--fork fork: {NO_CLASS}",  # not read: it would never end
         lambda here, mp: _fork_folder(here, lambda f: os.mkfifo(f / "pipe.py"))),
    Case("fork-unreadable-file", adopt("fork"), 2, "--fork fork: cannot read fork/locked.py (Permission denied)",
         lambda here, mp: _fork_folder(here, lambda f: _locked(f, mp))),
]  # fmt: skip


def _files(here: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(here)): (p.stat().st_size, p.stat().st_mtime_ns) for p in here.rglob("*") if p.is_file()}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_hostile_input_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m-n.yaml").write_text(FORK_YAML)
    case.setup(tmp_path, monkeypatch)
    before = _files(tmp_path)
    result = runner.invoke(app, case.argv, env={"COLUMNS": "200"})
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert (result.exit_code, len(lines)) == (case.code, 1), result.output
    assert lines[0].startswith("error: ") and case.says in lines[0], lines[0]
    assert _files(tmp_path) == before  # nothing written


def test_a_folder_named_x_py_in_a_fork_is_not_read_as_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m-n.yaml").write_text(FORK_YAML)
    (tmp_path / "fork" / "x.py").mkdir(parents=True)
    (tmp_path / "fork" / "block.py").write_text(
        "class C2f_EMA(C2f):\n    def forward(self, x):\n        return self.att(self.cv2(x))\n\n"
        "    def __init__(self, c1, c2):\n        self.att = EMA(c2)\n"
    )
    result = runner.invoke(app, adopt("fork"), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Augment, [C2f, [64, True], EMA, [32], output]" in (tmp_path / "m-n-adopted.yaml").read_text()


# --------------------------------------------------------------------------------------------------------------------
# Help texts: brackets are text, not Rich markup

BRACKETED = re.compile(r"\[[^\[\]]+\]")  # innermost: "[Module, args]" in "[IdentityInit, [Module, args]]"
COMMANDS = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _flat(text: str) -> str:
    """Rendered help as one line: panel borders gone, wrapped lines joined."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize("name", ["", *COMMANDS], ids=lambda n: n or "attnsurgeon")
def test_every_bracketed_help_text_survives_rendering(name):
    group = typer.main.get_command(app)
    command = group.commands[name] if name else group  # type: ignore[attr-defined]
    texts = [command.help, *(getattr(p, "help", None) for p in command.params)]
    if not name:  # the list of commands shows each one's help
        texts += [c.help for c in group.commands.values()]  # type: ignore[attr-defined]
    wanted = sorted({b for t in texts if t for b in BRACKETED.findall(t)})
    result = runner.invoke(app, [*([name] if name else []), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rendered = _flat(result.output)
    assert [b for b in wanted if _flat(b) not in rendered] == []
    if name == "cam":
        assert "Needs: pip install 'attnsurgeon[cam]'." in rendered
