"""Progress of long steps: a status line on a terminal's stderr, nothing when piped or with --json."""

from __future__ import annotations

import io
import json

from rich.console import Console
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.cli._status_line import progress, progress_kwargs

runner = CliRunner()


def terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=80), screen


def test_steps_show_on_a_terminal_and_the_line_goes_away():
    err, screen = terminal()
    with progress(console=err) as step:
        step("building yolo11n at n")
    assert "building yolo11n at n" in screen.getvalue()
    assert screen.getvalue().endswith("\x1b[1A\x1b[2K")  # transient: the status line is erased at the end
    err, screen = terminal()
    with progress(console=err) as step:
        step("timing", 12, 50)  # the profiler's form: a count
    assert "timing" in screen.getvalue() and "12/50" in screen.getvalue()


def test_quiet_when_not_a_terminal_or_disabled():
    screen = io.StringIO()
    with progress(console=Console(file=screen, force_terminal=False)) as step:
        step("forward 480x640")
    err, tty_screen = terminal()
    with progress(enabled=False, console=err) as step:
        step("training step", 1, 2)
    assert screen.getvalue() == "" and tty_screen.getvalue() == ""


def test_progress_goes_only_to_apis_that_take_it():
    def takes(model: str, progress=None) -> None: ...

    def lacks(model: str) -> None: ...

    def callback(step: str, done: int | None = None, total: int | None = None) -> None: ...

    assert progress_kwargs(takes, callback) == {"progress": callback}
    assert progress_kwargs(lacks, callback) == {}


def test_json_output_is_clean_json(tmp_path):
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-o", tmp_path / "x.yaml", "--json",
                                 "--no-verify"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["inserted"] == [{"after": 8, "index": 9}] and result.stderr == ""
