"""``attnsurgeon augment``: attention inside a block (C3k2 -> C3k2-EMA), verified, written."""

from __future__ import annotations

from typing import Annotated, Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import errors_to_exit, esc, from_text, with_plugins
from attnsurgeon.cli._options import (
    SHARED,
    ArgsOpt,
    JsonOpt,
    ModelArg,
    ModuleOpt,
    with_run_options,
)
from attnsurgeon.cli._report_view import AT_HELP, run_and_render
from attnsurgeon.ops.run_options import RunOptions


def register(app: typer.Typer) -> None:
    app.command(
        "augment",
        help="Put attention inside the block at layer K (C2f, C3k2, C3, C3k, C3x, C2fCIB, C2fPSA, C2PSA, A2C2f): in "
        "each bottleneck's residual branch before the addition, or on the block's output. No layer moves; the block "
        "keeps Ultralytics' channels and repeats at every scale. Verifies and writes like insert.",
    )(augment)


@errors_to_exit
@with_plugins
@with_run_options("<stem>-<Block>_<Module>.yaml/.pt", *(n for n in SHARED if n not in ("checks", "device")))
def augment(
    model: ModelArg,
    module: ModuleOpt,
    at: Annotated[list[str], typer.Option("--at", "-a", autocompletion=_complete.positions, help=AT_HELP)],
    args: ArgsOpt = None,
    where: Annotated[
        str,
        typer.Option(
            "--where",
            help="bottleneck: in every residual unit (Bottleneck after cv2, CIB after its last conv; PSABlock/ABlock "
            "after the FFN in blocks without such units), before the addition; output: after the block's last conv.",
        ),
    ] = "bottleneck",
    options: RunOptions = RunOptions(),
    as_json: JsonOpt = False,
) -> None:
    from attnsurgeon.ops import augment as augment_op

    def call(progress: Any) -> Any:
        progress(f"augmenting {model} with {module}")
        return augment_op.augment(model, module, at, args, where=where, options=options.reporting_to(progress))

    run_and_render(call, as_json, _headline, quiet=not options.verify)


def _headline(report: Any) -> str:
    lines = []
    for where, text in (("bottleneck", "in each bottleneck"), ("output", "on the output")):
        rows = [row for row in report.augmented if row["where"] == where]
        if rows:
            blocks = "/".join(dict.fromkeys(row["block"] for row in rows))
            layers = ", ".join(str(row["index"]) for row in rows)
            plural = "s" if len(rows) > 1 else ""
            lines.append(f"[bold]{report.module}[/] {from_text(report.args)} {text} of {blocks} layer{plural} {layers}")
    for scale, layers in report.attention.items():
        total = sum(v["modules"] for v in layers.values())
        added = sum(v["params"] for v in layers.values())
        per_layer = ", ".join(f"{i}: {v['modules']}" for i, v in layers.items())
        at = esc(f" [{scale}]") if scale else ""
        lines.append(f"  {total} {report.module}{at}, +{added:,} params (per layer {per_layer})")
    return "\n".join(lines)
