"""``attnsurgeon show``: the layer table a user reads to pick ``--after``."""

from __future__ import annotations

import typer

from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, fmt_int, from_text


def register(app: typer.Typer) -> None:
    app.command(
        "show",
        help="Show one row per layer: index, from (as written and absolute), repeats, module, args, output "
        "channels, stride (P-level) and params at a scale; then the layers each named position (heads, sppf, p4, "
        "every:C3k2, ...) stands for in this model.",
    )(show)


@errors_to_exit
def show(
    model: str = typer.Argument(..., help="Model YAML path or packaged Ultralytics name."),
    scale: str | None = typer.Option(None, "--scale", help="Scale to build at (default: the one in the file name)."),
    imgsz: int = typer.Option(640, "--imgsz", help="Image size used to measure strides."),
    no_build: bool = typer.Option(False, "--no-build", help="Only the YAML view: no channels, strides or params."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    from attnsurgeon import api, positions

    doc, chosen, rows, warnings = api.show(model, scale, imgsz, build=not no_build)
    named = positions.table(doc.graph)
    if as_json:
        emit_json(
            {
                "model": str(doc.path),
                "scale": chosen or None,
                "imgsz": imgsz,
                "layers": [r.as_dict() for r in rows],
                "positions": named,
            }
        )
        return
    from rich.table import Table

    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    table = Table(title=esc(f"{doc.stem} ({doc.path.name}, scale {chosen or '-'})"), title_justify="left")
    for col, justify in (
        ("idx", "right"),
        ("from", "left"),
        ("reads", "left"),
        ("n", "right"),
        ("module", "left"),
        ("args", "left"),
        ("out-ch", "right"),
        ("stride", "left"),
        ("params", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    section = None
    for r in rows:
        if r.section != section and section is not None:
            table.add_section()
        section = r.section
        table.add_row(
            str(r.index),
            from_text(r.from_),
            from_text(r.absolute),
            str(r.repeats),
            r.module,
            from_text(r.args),
            fmt_int(r.out_channels),
            r.level,
            fmt_int(r.params),
        )
    console().print(table)
    places = Table(title="positions (--after / --at)", title_justify="left", box=None, pad_edge=False)
    places.add_column("name")
    places.add_column("layers")
    for name, hits in named.items():
        places.add_row(esc(name), ", ".join(map(str, hits)) if isinstance(hits, list) else f"[dim]{esc(hits)}[/]")
    console().print(places)
