"""``attnsurgeon insert``: splice an attention layer into a model YAML, verify it, write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import POSITIONS_HELP, channel_arg_option, errors_to_exit, from_text, with_plugins
from attnsurgeon.cli._report import CHECKS_DEVICE_HELP, CHECKS_HELP, DRY_RUN_HELP, SCALE_HELP, run_and_render


def register(app: typer.Typer) -> None:
    app.command(
        "insert",
        help="Insert an attention layer after layer K (repeat --after for several), renumber every reference, "
        "verify the new model builds, runs (square and rectangular) and trains, and write the new YAML.",
    )(insert)


@errors_to_exit
@with_plugins
def insert(
    model: str = typer.Argument(
        ...,
        autocompletion=_complete.models,
        help="Model YAML path or packaged Ultralytics name (yolo11n.yaml, yolov8s-seg.yaml), or an Ultralytics .pt "
        "checkpoint (its weights move to their new indices; the new YAML is written beside the output).",
    ),
    module: str = typer.Option(
        ...,
        "--module",
        "-m",
        autocompletion=_complete.modules,
        help="Catalog module name ('attnsurgeon list' shows them), or a plain nn.Module class as its authors wrote "
        "it: FILE.py:ClassName, timm:CbamModule, ultralytics:CBAM ('attnsurgeon list --source timm').",
    ),
    after: list[str] = typer.Option(
        ...,
        "--after",
        "-a",
        autocompletion=_complete.positions,
        help="Insert after this layer index of the input file, or after a named position: "
        f"{POSITIONS_HELP}; repeatable, or comma-separated.",
    ),
    args: str | None = typer.Option(
        None,
        "--args",
        help='Module hyper-parameters as a YAML list, e.g. "[2, 1]"; a plain nn.Module class also takes them by '
        'keyword, "{reduction: 8, kernel_size: 7}" or "[8, {kernel_size: 7}]". Default: the module defaults.',
    ),
    channel_arg: str | None = channel_arg_option(),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output YAML, or .pt for a checkpoint (default: <input stem>-<Module>.yaml/.pt)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
    identity_init: bool = typer.Option(
        False,
        "--identity-init",
        help="Start the new layer as the identity: the row becomes [IdentityInit, [Module, args]], "
        "x + gamma * (M(x) - x) with gamma = 0, so a checkpoint's outputs are unchanged until training moves gamma.",
    ),
    rewire: str = typer.Option(
        "all",
        "--rewire",
        autocompletion=_complete.rewire,
        help="all: every later reader of layer K reads the attention; next: only the next layer does.",
    ),
    scale: str | None = typer.Option(None, "--scale", autocompletion=_complete.scales_or_all, help=SCALE_HELP),
    imgsz: int = typer.Option(640, "--imgsz", help="Square image size for the checks and GFLOPs."),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Skip building and checking the model (no torch import)."
    ),
    checks: str | None = typer.Option(None, "--checks", autocompletion=_complete.checks, help=CHECKS_HELP),
    device: str = typer.Option("cpu", "--device", autocompletion=_complete.devices, help=CHECKS_DEVICE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    from attnsurgeon import api
    from attnsurgeon.catalog import foreign_plugins, sources

    module = sources.with_channel(module, channel_arg)  # FILE.py:Class?channel=NAME
    foreign_plugins.refuse_renamed(module)  # -m SEAttention after --plugin se.py:SEAttention (added as a new name)

    def call(progress: Any) -> Any:
        progress(f"inserting {module} into {model}")
        return api.insert(
            model, module, after, args=args, output=output, force=force, rewire=rewire, scale=scale, imgsz=imgsz,
            verify=not no_verify, identity_init=identity_init, dry_run=dry_run, progress=progress, checks=checks,
            device=device,
        )  # fmt: skip

    run_and_render(call, as_json, _headline, quiet=no_verify)


def _headline(report: Any) -> str:
    where = ", ".join(f"after {i['after']} → layer {i['index']}" for i in report.inserted)
    return f"[bold]{report.module}[/] {from_text(report.args)} inserted {where} (rewire {report.rewire})"
