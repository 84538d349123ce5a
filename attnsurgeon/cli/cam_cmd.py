"""``attnsurgeon cam``: heat maps of where a base model and its variant look, side by side on the same images."""

from __future__ import annotations

from pathlib import Path

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, with_plugins
from attnsurgeon.cli._status_line import progress

METHODS_HELP = "gradcam, gradcam++, eigencam, layercam, hirescam, xgradcam, eigengradcam"  # figures.cam.METHODS


def register(app: typer.Typer) -> None:
    app.command(
        "cam",
        help="Heat maps (Grad-CAM, EigenCAM, LayerCAM, ... from the grad-cam package) of where BASE and VARIANT look "
        "on each image, side by side with their detections, one PNG per image plus grid.png. The target is the score "
        "of each model's own predictions. Needs: pip install 'attnsurgeon[cam]'.",
    )(cam)


@errors_to_exit
@with_plugins
def cam(
    base: str = typer.Argument(..., autocompletion=_complete.models, help="Base model: a .pt checkpoint (or YAML)."),
    variant: str = typer.Argument(
        ..., autocompletion=_complete.models, help="Variant: a .pt checkpoint, or a YAML (random weights: a warning)."
    ),
    images: list[Path] = typer.Argument(..., help="Image files."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the PNGs (made if missing)."),
    method: str = typer.Option("gradcam", "--method", help=f"One of: {METHODS_HELP}."),
    layer: str = typer.Option(
        "heads",
        "--layer",
        help="heads (the feature maps the head reads), new (the variant's new layers; the base at the same places) "
        "or a layer index of the variant.",
    ),
    conf: float = typer.Option(0.25, "--conf", help="Confidence of the detections that make the target."),
    imgsz: int = typer.Option(640, "--imgsz", help="Letterboxed input size, as predict uses."),
    attention_map: bool = typer.Option(
        False,
        "--attention-map",
        help="Add a panel with the variant layers' own attention map: CBAM's spatial gate, GC's pooling weights, the "
        "attention each position receives in a self-attention (HaloAttention, CrissCrossAttention, C2PSA/PSA); use "
        "with --layer new or K.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite PNGs that exist."),
    as_json: bool = typer.Option(False, "--json", help="Print the files written (and the layers) as JSON."),
) -> None:
    from attnsurgeon.figures import cam as cam_mod

    with progress(enabled=not as_json) as step:
        result = cam_mod.cam(base, variant, images, output, method, layer, conf, imgsz, force, step, attention_map)
    for warning in result.warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    if as_json:
        emit_json(
            {
                "files": [str(f) for f in result.files],
                "base_layers": result.base_layers,
                "variant_layers": result.variant_layers,
                "warnings": result.warnings,
            }
        )
        return
    out = console()
    out.print(f"base layers {result.base_layers}, variant layers {result.variant_layers}")
    for f in result.files:
        out.print(f"wrote {esc(f)}")
