"""``attnsurgeon remove``: take a layer out (the inverse of insert), verify the result, write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import errors_to_exit, esc, with_plugins
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
        "remove",
        help="Remove the layer at K (an attention layer, IdentityInit or another layer that keeps its single input's "
        "shape): every reader of K reads K's input, everything else is renumbered; the inverse of insert. Verifies "
        "and writes like insert.",
    )(remove)


@errors_to_exit
@with_plugins
def remove(
    model: str = typer.Argument(..., autocompletion=_complete.models, help=MODEL_HELP),
    at: list[str] = typer.Option(..., "--at", autocompletion=_complete.positions, help=AT_HELP),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output YAML, or .pt for a checkpoint (default: <input stem>-no<K>.yaml/.pt)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
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
        return api.remove(
            model,
            at,
            output=output,
            force=force,
            scale=scale,
            imgsz=imgsz,
            verify=not no_verify,
            dry_run=dry_run,
            progress=progress,
            checks=checks,
            device=device,
        )

    run_and_render(call, as_json, _removed_headline, quiet=no_verify)


def _removed_headline(report: Any) -> str:
    plural = "s" if len(report.removed) > 1 else ""
    return f"removed layer{plural} {', '.join(map(str, report.removed))} of {esc(report.source.name)}"
