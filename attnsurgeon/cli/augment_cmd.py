"""``attnsurgeon augment``: attention inside a block (C3k2 -> C3k2-EMA), verified, written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import errors_to_exit, esc, from_text, with_plugins
from attnsurgeon.cli._report import AT_HELP, DRY_RUN_HELP, MODEL_HELP, SCALE_HELP, run_and_render


def register(app: typer.Typer) -> None:
    app.command(
        "augment",
        help="Put attention inside the block at layer K (C2f, C3k2, C3, C3k, C3x, C2fCIB, C2fPSA, C2PSA, A2C2f): in "
        "each bottleneck's residual branch before the addition, or on the block's output. No layer moves; the block "
        "keeps Ultralytics' channels and repeats at every scale. Verifies and writes like insert.",
    )(augment)


@errors_to_exit
@with_plugins
def augment(
    model: str = typer.Argument(..., autocompletion=_complete.models, help=MODEL_HELP),
    module: str = typer.Option(
        ...,
        "--module",
        "-m",
        autocompletion=_complete.modules,
        help="Catalog module name ('attnsurgeon list' shows them).",
    ),
    at: list[str] = typer.Option(..., "--at", "-a", autocompletion=_complete.positions, help=AT_HELP),
    args: str | None = typer.Option(
        None, "--args", help='Module hyper-parameters as a YAML list, e.g. "[8]". Default: the module defaults.'
    ),
    where: str = typer.Option(
        "bottleneck",
        "--where",
        help="bottleneck: in every residual unit (Bottleneck after cv2, CIB after its last conv; PSABlock/ABlock "
        "after the FFN in blocks without such units), before the addition; output: after the block's last conv.",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output YAML, or .pt for a checkpoint (default: <stem>-<Block>_<Module>.yaml/.pt)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
    identity_init: bool = typer.Option(
        False,
        "--identity-init",
        help="Start every attention as the identity ([IdentityInit, [Module, args]]: y + gamma * (M(y) - y), "
        "gamma = 0), so a checkpoint's outputs are unchanged until training moves gamma.",
    ),
    scale: str | None = typer.Option(None, "--scale", autocompletion=_complete.scales_or_all, help=SCALE_HELP),
    imgsz: int = typer.Option(640, "--imgsz", help="Square image size for the checks and GFLOPs."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip building and checking the model (no torch)."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    from attnsurgeon import api_augment

    def call(progress: Any) -> Any:
        progress(f"augmenting {model} with {module}")
        return api_augment.augment(
            model, module, at, args=args, where=where, output=output, force=force, scale=scale, imgsz=imgsz,
            verify=not no_verify, identity_init=identity_init, dry_run=dry_run, progress=progress,
        )  # fmt: skip

    run_and_render(call, as_json, _headline, quiet=no_verify)


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
