"""``attnsurgeon show``: the layer table a user reads to pick ``--after``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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


# show's options, in the order --help lists them.
ShowModelArg = Annotated[
    str,
    typer.Argument(
        autocompletion=_complete.models,
        help="Model YAML path or packaged Ultralytics name (or, with --plot, a .pt checkpoint).",
    ),
]
ShowScaleOpt = Annotated[
    str | None,
    typer.Option(
        "--scale", autocompletion=_complete.scales, help="Scale to build at (default: the one in the file name)."
    ),
]
ShowImgszOpt = Annotated[int, typer.Option("--imgsz", help="Image size used to measure strides.")]
NoBuildOpt = Annotated[bool, typer.Option("--no-build", help="Only the YAML view: no channels, strides or params.")]
ShowJsonOpt = Annotated[bool, typer.Option("--json", help="Print the table as JSON.")]
PlotOpt = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        help="Also draw the layer graph to this .png or .svg (new layers highlighted; no torch for a YAML).",
    ),
]
HighlightOpt = Annotated[
    list[int], typer.Option("--highlight", help="Also highlight this layer in --plot; repeatable.")
]
BaseOpt = Annotated[
    str | None,
    typer.Option(
        "--base",
        help="With --plot: highlight the layers new against this base (YAML or .pt), not every attention row.",
    ),
]
ShowForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite the --plot file if it exists.")]


@errors_to_exit
@with_plugins
def show(
    model: ShowModelArg,
    scale: ShowScaleOpt = None,
    imgsz: ShowImgszOpt = DEFAULT_IMGSZ,
    no_build: NoBuildOpt = False,
    as_json: ShowJsonOpt = False,
    plot: PlotOpt = None,
    highlight: HighlightOpt = [],  # noqa: B006 (Typer hands every call a list of its own)
    base: BaseOpt = None,
    force: ShowForceOpt = False,
) -> None:
    from attnsurgeon.core import positions
    from attnsurgeon.ops import show as api

    drawn = _draw(model, plot, scale, highlight, base, force) if plot is not None else None
    if _is_checkpoint(model):  # the layer table is built from YAML files only
        _checkpoint_drawn(model, drawn, as_json)
        return
    with progress(enabled=not as_json and not no_build) as step:
        step(f"building {model}")
        doc, chosen, layers, warnings = api.show(
            model, scale, imgsz, build=not no_build, **progress_kwargs(api.show, step)
        )
    named = positions.table(doc.graph)
    if as_json:
        _emit_json(doc, chosen, imgsz, layers, named, warnings, drawn)
    else:
        _render(doc, chosen, layers, named, warnings, no_build)


def _is_checkpoint(model: str) -> bool:
    from attnsurgeon.figures.diagram import CHECKPOINT_SUFFIXES

    return Path(model).suffix.lower() in CHECKPOINT_SUFFIXES


def _draw(
    model: str, plot: Path, scale: str | None, highlight: list[int], base: str | None, force: bool
) -> dict[str, Any]:
    """--plot: the layer graph drawn (said on stderr); what --json says of it."""
    from attnsurgeon.figures.diagram import plot_model

    plotted = plot_model(model, plot, scale, highlight, base, force)
    console(stderr=True).print(f"wrote {esc(plot)} (highlighted: {from_text(plotted.highlighted)})")
    return {"file": str(plot), "highlighted": plotted.highlighted}


def _checkpoint_drawn(model: str, drawn: dict[str, Any] | None, as_json: bool) -> None:
    """A checkpoint has its drawing only; without --plot it is a usage error."""
    if drawn is None:
        raise UsageError(f"{model}: show takes a checkpoint with --plot only (the drawing); give a YAML for the table")
    if as_json:
        emit_json({"model": model, "plot": drawn})


def _emit_json(
    doc: Any, chosen: str | None, imgsz: int, layers: list[Any], named: dict[str, Any], warnings: list[str],
    drawn: dict[str, Any] | None,
) -> None:  # fmt: skip
    emit_json(
        {
            "model": str(doc.path),
            "scale": chosen or None,
            "imgsz": imgsz,
            "layers": [r.as_dict() for r in layers],
            "positions": named,
            "warnings": warnings,
            "imported": imported_files(),
            **({"plot": drawn} if drawn else {}),
        }
    )


def _render(
    doc: Any, chosen: str | None, layers: list[Any], named: dict[str, Any], warnings: list[str], no_build: bool
) -> None:
    """Warnings and imported files, the layer table (the built columns unless --no-build) with its notes, then the
    named positions."""
    out = console()
    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    imported = imported_files()  # code that ran: the plugin and class files building the table imported
    if imported:
        out.print(f"imported: {esc(', '.join(imported))}")
    rows = [
        Row(_cells(r, no_build), new_section=i > 0 and r.section != layers[i - 1].section) for i, r in enumerate(layers)
    ]
    table, left_out = fit_table(
        out,
        SHOW_COLUMNS if not no_build else SHOW_COLUMNS[:-3],
        rows,
        title=esc(f"{doc.stem} ({doc.path.name}, scale {chosen or '-'})"),
    )
    out.print(table)
    for note in _notes(layers, chosen, left_out, out):
        out.print(f"[dim]{esc(note)}[/]")
    places = [
        Row((esc(name), ", ".join(map(str, hits)) if isinstance(hits, list) else f"[dim]{esc(hits)}[/]"))
        for name, hits in named.items()
    ]
    out.print(fit_table(out, POSITION_COLUMNS, places, title="positions (--after / --at)", box=None)[0])


def _cells(r: Any, no_build: bool) -> tuple[str, ...]:
    """One layer's row: as written, then (unless --no-build) as built."""
    return (
        str(r.index),
        from_text(r.from_),
        from_text(r.absolute),
        repeats_text(r.repeats, r.repeats_at_scale),
        esc(r.label),
        from_text([*r.augmented["block_args"], r.augmented["where"], *r.augmented["args"]])
        if r.augmented
        else from_text(r.args),
        *((fmt_int(r.out_channels), r.level, fmt_int(r.params)) if not no_build else ()),
    )


def _notes(layers: list[Any], chosen: str | None, left_out: Any, out: Any) -> list[str]:
    """What the table's marks mean, only for the marks it has."""
    notes = []
    if any(r.repeats_at_scale != r.repeats for r in layers):
        notes.append(f"n: repeats at scale {chosen or '-'}; the YAML's value in brackets where it differs")
    if any(r.augmented for r in layers):
        notes.append("◆ attention inside the block (augment); args: the block's, then where and the attention's")
    if left_out:
        notes.append(left_out_note(out, left_out, "--json has it"))
    return notes


def repeats_text(written: int, at_scale: int | None) -> str:
    return str(written) if at_scale is None or at_scale == written else f"{at_scale} ({written})"
