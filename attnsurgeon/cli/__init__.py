"""The command-line shell: one module per command, every error one line and an exit code.

Commands import heavy rooms (torch, ultralytics) inside their bodies, so ``--help``, ``list`` and
``insert --no-verify`` stay fast.
"""

from __future__ import annotations

import typer

from attnsurgeon.cli import (
    _common,
    adopt_cmd,
    augment_cmd,
    cam_cmd,
    catalog_cmds,
    insert_cmd,
    module_cmds,
    profile_cmd,
    remove_cmd,
    replace_cmd,
    show_cmd,
    sweep_cmd,
)

app = typer.Typer(
    name="attnsurgeon",
    help="Insert attention modules into Ultralytics YOLO model YAMLs, renumber every reference, and prove the "
    "result builds, runs, trains, and what it costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=_common.TextHelpGroup,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error."),
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_common.print_version, is_eager=True
    ),
) -> None:
    _common.STATE.debug = debug


insert_cmd.register(app)
augment_cmd.register(app)
remove_cmd.register(app)
replace_cmd.register(app)
show_cmd.register(app)
catalog_cmds.register(app)
profile_cmd.register(app)
sweep_cmd.register(app)
module_cmds.register(app)
adopt_cmd.register(app)
cam_cmd.register(app)
for _command in app.registered_commands:  # help texts are plain text, not Rich markup (see TextHelpCommand)
    _command.cls = _common.TextHelpCommand


def main() -> None:
    app(prog_name="attnsurgeon")  # also under `python -m attnsurgeon`, so completion scripts name the command
