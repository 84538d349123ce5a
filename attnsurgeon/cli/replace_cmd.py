"""``attnsurgeon replace``: swap the attention layer at K for another module, verify the result, write it."""

from __future__ import annotations

from typing import Any

import typer

from attnsurgeon.cli._common import errors_to_exit, from_text, with_plugins
from attnsurgeon.cli._options import (
    ArgsOpt,
    AtOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    with_run_options,
)
from attnsurgeon.cli._report_view import run_and_render
from attnsurgeon.ops.run_options import RunOptions


def register(app: typer.Typer) -> None:
    app.command(
        "replace",
        help="Replace the attention layer at K by another catalog module (or a plugin's): the row's module and args "
        "change, no reference moves. Verifies and writes like insert.",
    )(replace)


@errors_to_exit
@with_plugins
@with_run_options("<input stem>-<Module>.yaml/.pt")
def replace(
    model: ModelArg,
    at: AtOpt,
    module: ModuleOpt,
    args: ArgsOpt = None,
    options: RunOptions = RunOptions(),
    as_json: JsonOpt = False,
) -> None:
    from attnsurgeon.ops import surgery

    def call(progress: Any) -> Any:
        return surgery.replace(model, at, module, args, options=options.reporting_to(progress))

    run_and_render(call, as_json, _replaced_headline, quiet=not options.verify)


def _replaced_headline(report: Any) -> str:
    plural = "s" if len(report.replaced) > 1 else ""
    where = ", ".join(map(str, report.replaced))
    return f"layer{plural} {where} now [bold]{report.module}[/] {from_text(report.args)}"
