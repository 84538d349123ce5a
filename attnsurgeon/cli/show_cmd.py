"""``attnsurgeon show``: the layer table a user reads to pick ``--after``."""

from __future__ import annotations

from pathlib import Path

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import (
    console,
    emit_json,
    errors_to_exit,
    esc,
    fmt_int,
    from_text,
    imported_files,
    with_plugins,
)
from attnsurgeon.cli._status_line import progress, progress_kwargs
from attnsurgeon.cli._tables import Col, Row, fit_table, left_out_note
from attnsurgeon.core.sizes import DEFAULT_IMGSZ
from attnsurgeon.errors import UsageError

# Index, module and the built numbers stay whole; `from` and args wrap; the `from` as written gives way first
# (the absolute `reads` is what --after and the references need).
POSITION_COLUMNS = (Col("name", key=True), Col("layers"))
SHOW_COLUMNS = (
    Col("idx", "right", key=True),
    Col("from", drop=1),
    Col("reads"),
    Col("n", "right", key=True),
    Col("module", key=True),
    Col("args"),
    # built at the scale (left out with --no-build):
    Col("out-ch", "right", key=True),
    Col("stride", key=True),
    Col("params", "right", key=True),
)


def register(app: typer.Typer) -> None:
    app.command(
        "show",
        help="Show one row per layer: index, from (as written and absolute), repeats (at the scale), module, args, "
        "output channels, stride (P-level) and params at a scale; then the layers each named position (heads, sppf, "
        "p4, every:C3k2, ...) stands for in this model.",
    )(show)


@errors_to_exit
@with_plugins
def show(
    model: str = typer.Argument(
        ...,
        autocompletion=_complete.models,
        help="Model YAML path or packaged Ultralytics name (or, with --plot, a .pt checkpoint).",
    ),
    scale: str | None = typer.Option(
        None, "--scale", autocompletion=_complete.scales, help="Scale to build at (default: the one in the file name)."
    ),
    imgsz: int = typer.Option(DEFAULT_IMGSZ, "--imgsz", help="Image size used to measure strides."),
    no_build: bool = typer.Option(False, "--no-build", help="Only the YAML view: no channels, strides or params."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
    plot: Path | None = typer.Option(
        None,
        "--plot",
        help="Also draw the layer graph to this .png or .svg (new layers highlighted; no torch for a YAML).",
    ),
    highlight: list[int] = typer.Option([], "--highlight", help="Also highlight this layer in --plot; repeatable."),
    base: str | None = typer.Option(
        None,
        "--base",
        help="With --plot: highlight the layers new against this base (YAML or .pt), not every attention row.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the --plot file if it exists."),
) -> None:
    from attnsurgeon.core import positions
    from attnsurgeon.figures.diagram import CHECKPOINT_SUFFIXES
    from attnsurgeon.ops import show as api

    plotted = None
    if plot is not None:
        from attnsurgeon.figures.diagram import plot_model

        plotted = plot_model(model, plot, scale, highlight, base, force)
        console(stderr=True).print(f"wrote {esc(plot)} (highlighted: {from_text(plotted.highlighted)})")
        if Path(model).suffix.lower() in CHECKPOINT_SUFFIXES:  # the layer table is built from YAML files only
            if as_json:
                emit_json({"model": model, "plot": {"file": str(plot), "highlighted": plotted.highlighted}})
            return
    elif Path(model).suffix.lower() in CHECKPOINT_SUFFIXES:
        raise UsageError(f"{model}: show takes a checkpoint with --plot only (the drawing); give a YAML for the table")

    with progress(enabled=not as_json and not no_build) as step:
        step(f"building {model}")
        doc, chosen, layers, warnings = api.show(
            model, scale, imgsz, build=not no_build, **progress_kwargs(api.show, step)
        )
    named = positions.table(doc.graph)
    if as_json:
        emit_json(
            {
                "model": str(doc.path),
                "scale": chosen or None,
                "imgsz": imgsz,
                "layers": [r.as_dict() for r in layers],
                "positions": named,
                "warnings": warnings,
                "imported": imported_files(),
                **({"plot": {"file": str(plot), "highlighted": plotted.highlighted}} if plotted else {}),
            }
        )
        return
    out = console()
    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    imported = imported_files()  # code that ran: the plugin and class files building the table imported
    if imported:
        out.print(f"imported: {esc(', '.join(imported))}")
    rows = [
        Row(
            (
                str(r.index),
                from_text(r.from_),
                from_text(r.absolute),
                repeats_text(r.repeats, r.repeats_at_scale),
                esc(r.label),
                from_text([*r.augmented["block_args"], r.augmented["where"], *r.augmented["args"]])
                if r.augmented
                else from_text(r.args),
                *((fmt_int(r.out_channels), r.level, fmt_int(r.params)) if not no_build else ()),
            ),
            new_section=i > 0 and r.section != layers[i - 1].section,
        )
        for i, r in enumerate(layers)
    ]
    table, left_out = fit_table(
        out,
        SHOW_COLUMNS if not no_build else SHOW_COLUMNS[:-3],
        rows,
        title=esc(f"{doc.stem} ({doc.path.name}, scale {chosen or '-'})"),
    )
    out.print(table)
    notes = []
    if any(r.repeats_at_scale != r.repeats for r in layers):
        notes.append(f"n: repeats at scale {chosen or '-'}; the YAML's value in brackets where it differs")
    if any(r.augmented for r in layers):
        notes.append("◆ attention inside the block (augment); args: the block's, then where and the attention's")
    if left_out:
        notes.append(left_out_note(out, left_out, "--json has it"))
    for note in notes:
        out.print(f"[dim]{esc(note)}[/]")
    places = [
        Row((esc(name), ", ".join(map(str, hits)) if isinstance(hits, list) else f"[dim]{esc(hits)}[/]"))
        for name, hits in named.items()
    ]
    out.print(fit_table(out, POSITION_COLUMNS, places, title="positions (--after / --at)", box=None)[0])


def repeats_text(written: int, at_scale: int | None) -> str:
    return str(written) if at_scale is None or at_scale == written else f"{at_scale} ({written})"
