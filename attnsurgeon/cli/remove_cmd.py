"""``attnsurgeon remove``: take a layer out (the inverse of insert), verify the result, write it."""

from __future__ import annotations

from typing import Any

import typer

from attnsurgeon.cli._common import errors_to_exit, esc, with_plugins
from attnsurgeon.cli._options import (
    SHARED,
    AtOpt,
    JsonOpt,
    ModelArg,
    with_run_options,
)
from attnsurgeon.cli._report_view import run_and_render
from attnsurgeon.ops.run_options import RunOptions


def register(app: typer.Typer) -> None:
    app.command(
        "remove",
        help="Remove the layer at K (an attention layer, IdentityInit or another layer that keeps its single input's "
        "shape): every reader of K reads K's input, everything else is renumbered; the inverse of insert. Verifies "
        "and writes like insert.",
    )(remove)


@errors_to_exit
@with_plugins
@with_run_options("<input stem>-no<K>.yaml/.pt", *(n for n in SHARED if n != "identity_init"))
def remove(
    model: ModelArg,
    at: AtOpt,
    options: RunOptions = RunOptions(),
    as_json: JsonOpt = False,
) -> None:
    from attnsurgeon.ops import surgery

    def call(progress: Any) -> Any:
        return surgery.remove(model, at, options=options.reporting_to(progress))

    run_and_render(call, as_json, _removed_headline, quiet=not options.verify)


def _removed_headline(report: Any) -> str:
    plural = "s" if len(report.removed) > 1 else ""
    return f"removed layer{plural} {', '.join(map(str, report.removed))} of {esc(report.source.name)}"
