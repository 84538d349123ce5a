"""``attnsurgeon insert``: splice an attention layer into a model YAML, verify it, write it."""

from __future__ import annotations

from typing import Annotated, Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import (
    POSITIONS_HELP,
    channel_arg_option,
    errors_to_exit,
    from_text,
    layout_option,
    with_plugins,
)
from attnsurgeon.cli._options import (
    ArgsOpt,
    JsonOpt,
    ModuleOpt,
    with_run_options,
)
from attnsurgeon.cli._report_view import run_and_render
from attnsurgeon.ops.run_options import RunOptions


def register(app: typer.Typer) -> None:
    app.command(
        "insert",
        help="Insert an attention layer after layer K (repeat --after for several), renumber every reference, "
        "verify the new model builds, runs (square and rectangular) and trains, and write the new YAML.",
    )(insert)


@errors_to_exit
@with_plugins
@with_run_options("<input stem>-<Module>.yaml/.pt")
def insert(
    model: Annotated[
        str,
        typer.Argument(
            autocompletion=_complete.models,
            help="Model YAML path or packaged Ultralytics name (yolo11n.yaml, yolov8s-seg.yaml), or an Ultralytics .pt "
            "checkpoint (its weights move to their new indices; the new YAML is written beside the output).",
        ),
    ],
    module: ModuleOpt,
    after: Annotated[
        list[str],
        typer.Option(
            "--after",
            "-a",
            autocompletion=_complete.positions,
            help="Insert after this layer index of the input file, or after a named position: "
            f"{POSITIONS_HELP}; repeatable, or comma-separated.",
        ),
    ],
    args: ArgsOpt = None,
    channel_arg: str | None = channel_arg_option(),
    layout: str | None = layout_option(),
    rewire: Annotated[
        str,
        typer.Option(
            "--rewire",
            autocompletion=_complete.rewire,
            help="all: every later reader of layer K reads the attention; next: only the next layer does.",
        ),
    ] = "all",
    options: RunOptions = RunOptions(),
    as_json: JsonOpt = False,
) -> None:
    from attnsurgeon import sources
    from attnsurgeon.ops import surgery

    if channel_arg is not None or layout is not None:
        from attnsurgeon.sources import named_classes

        module = named_classes.with_channel(module, channel_arg, layout)  # FILE.py:Class?channel=NAME&layout=tokens
    sources.refuse_renamed(module)  # -m SEAttention after --plugin se.py:SEAttention (added as a new name)

    def call(progress: Any) -> Any:
        progress(f"inserting {module} into {model}")
        return surgery.insert(model, module, after, args, rewire=rewire, options=options.reporting_to(progress))

    run_and_render(call, as_json, _headline, quiet=not options.verify)


def _headline(report: Any) -> str:
    where = ", ".join(f"after {i['after']} → layer {i['index']}" for i in report.inserted)
    return f"[bold]{report.module}[/] {from_text(report.args)} inserted {where} (rewire {report.rewire})"
