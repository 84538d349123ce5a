"""``attnsurgeon replace``: swap the attention layer at K for another module, verify the result, write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import errors_to_exit, from_text, with_plugins
from attnsurgeon.cli._report import (
    AT_HELP,
    CHECKS_DEVICE_HELP,
    CHECKS_HELP,
    DRY_RUN_HELP,
    MODEL_HELP,
    SCALE_HELP,
    run_and_render,
)


def register(app: typer.Typer) -> None:
    app.command(
        "replace",
        help="Replace the attention layer at K by another catalog module (or a plugin's): the row's module and args "
        "change, no reference moves. Verifies and writes like insert.",
    )(replace)


@errors_to_exit
@with_plugins
def replace(
    model: str = typer.Argument(..., autocompletion=_complete.models, help=MODEL_HELP),
    at: list[str] = typer.Option(..., "--at", autocompletion=_complete.positions, help=AT_HELP),
    module: str = typer.Option(
        ...,
        "--module",
        "-m",
        autocompletion=_complete.modules,
        help="Catalog module name ('attnsurgeon list' shows them).",
    ),
    args: str | None = typer.Option(
        None, "--args", help='Module hyper-parameters as a YAML list, e.g. "[2, 1]". Default: the module defaults.'
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output YAML, or .pt for a checkpoint (default: <input stem>-<Module>.yaml/.pt)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
    identity_init: bool = typer.Option(
        False,
        "--identity-init",
        help="Start the new layer as the identity ([IdentityInit, [Module, args]], gamma = 0), so a checkpoint's "
        "outputs are those without the replaced layer until training moves gamma.",
    ),
    scale: str | None = typer.Option(None, "--scale", autocompletion=_complete.scales_or_all, help=SCALE_HELP),
    imgsz: int = typer.Option(640, "--imgsz", help="Square image size for the checks and GFLOPs."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip building and checking the model (no torch)."),
    checks: str | None = typer.Option(None, "--checks", autocompletion=_complete.checks, help=CHECKS_HELP),
    device: str = typer.Option("cpu", "--device", autocompletion=_complete.devices, help=CHECKS_DEVICE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    from attnsurgeon import api

    def call(progress: Any) -> Any:
        return api.replace(
            model, at, module, args=args, output=output, force=force, identity_init=identity_init, scale=scale,
            imgsz=imgsz, verify=not no_verify, dry_run=dry_run, progress=progress, checks=checks, device=device,
        )  # fmt: skip

    run_and_render(call, as_json, _replaced_headline, quiet=no_verify)


def _replaced_headline(report: Any) -> str:
    plural = "s" if len(report.replaced) > 1 else ""
    where = ", ".join(map(str, report.replaced))
    return f"layer{plural} {where} now [bold]{report.module}[/] {from_text(report.args)}"
