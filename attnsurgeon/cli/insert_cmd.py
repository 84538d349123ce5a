"""``attnsurgeon insert``: splice an attention layer into a model YAML, verify it, write it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, fmt_delta, fmt_int, from_text
from attnsurgeon.cli._progress import progress
from attnsurgeon.cli._tables import Col, Row, fit_table
from attnsurgeon.errors import VerificationError

CHANGED_COLUMNS = (
    Col("layer", "right", key=True),
    Col("module", key=True),
    Col("from (old)"),
    Col("from (new)"),
    Col("reads (new)"),
)
CHECK_COLUMNS = (Col("", key=True), Col("check", key=True), Col("detail"))
COST_COLUMNS = tuple(Col(h, "right", key=True) for h in ("scale", "", "params", "GFLOPs"))


def register(app: typer.Typer) -> None:
    app.command(
        "insert",
        help="Insert an attention layer after layer K (repeat --after for several), renumber every reference, "
        "verify the new model builds, runs (square and rectangular) and trains, and write the new YAML.",
    )(insert)


@errors_to_exit
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
        help="Catalog module name ('attnsurgeon list' shows them).",
    ),
    after: list[int] = typer.Option(
        ...,
        "--after",
        "-a",
        autocompletion=_complete.positions,
        help="Insert after this layer index of the input file; repeatable.",
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
        help="Start the new layer as the identity: the row becomes [IdentityInit, [Module, args]], "
        "x + gamma * (M(x) - x) with gamma = 0, so a checkpoint's outputs are unchanged until training moves gamma.",
    ),
    rewire: str = typer.Option(
        "all",
        "--rewire",
        autocompletion=_complete.rewire,
        help="all: every later reader of layer K reads the attention; next: only the next layer does.",
    ),
    scale: str | None = typer.Option(
        None,
        "--scale",
        autocompletion=_complete.scales_or_all,
        help="Verify at this scale (n/s/m/l/x) or 'all'. Default: the scale in the file name.",
    ),
    imgsz: int = typer.Option(640, "--imgsz", help="Square image size for the checks and GFLOPs."),
    no_verify: bool = typer.Option(
        False, "--no-verify", help="Skip building and checking the model (no torch import)."
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Write nothing: print the unified diff of the YAML that would be written (and, for a checkpoint, the "
        "layer map). Verifies unless --no-verify.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    from attnsurgeon import api

    try:
        with progress(enabled=not as_json and not no_verify) as step:
            step(f"inserting {module} into {model}")
            report = api.insert(
                model,
                module,
                after,
                args=args,
                output=output,
                force=force,
                rewire=rewire,
                scale=scale,
                imgsz=imgsz,
                verify=not no_verify,
                identity_init=identity_init,
                dry_run=dry_run,
                progress=step,
            )
    except VerificationError as exc:
        if as_json:
            emit_json({"output": None, "error": str(exc), "checks": [c.as_dict() for c in exc.checks]})
        else:
            _render_checks(exc.checks, stderr=True)
        raise
    if as_json:
        emit_json(report.as_dict())
        return
    _render(report)


def _render(report: Any) -> None:
    out = console()
    for warning in report.warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    where = ", ".join(f"after {i['after']} → layer {i['index']}" for i in report.inserted)
    out.print(f"[bold]{report.module}[/] {from_text(report.args)} inserted {where} (rewire {report.rewire})")
    if report.changed:
        rows = [
            Row(
                (
                    str(row["index"]),
                    esc(row["module"]),
                    from_text(row["from_old"]),
                    from_text(row["from_new"]),
                    from_text(row["absolute_new"]),
                )
            )
            for row in report.changed
        ]
        out.print(fit_table(out, CHANGED_COLUMNS, rows, title="references changed")[0])
    _render_checks(report.checks)
    if report.costs:
        rows = []
        for scale, (base, new) in report.costs.items():
            rows.append(Row((scale or "-", "base", fmt_int(base.params), f"{base.gflops:.2f}")))
            rows.append(Row(("", "new", fmt_int(new.params), f"{new.gflops:.2f}")))
            rows.append(Row(("", "Δ", fmt_delta(new.params, base.params), fmt_delta(new.gflops, base.gflops, 2))))
        out.print(fit_table(out, COST_COLUMNS, rows, title="cost")[0])
    if report.dry_run:
        render_dry_run(report)
    elif report.output is not None:
        out.print(f"wrote [bold]{esc(report.output)}[/]")
        if report.output.suffix == ".pt":  # a checkpoint surgery writes the architecture beside the weights
            out.print(f"wrote [bold]{esc(report.output.with_suffix('.yaml'))}[/]")


def render_dry_run(report: Any) -> None:
    """The diff (plain text, so it can be piped to ``patch``), the layer map of a checkpoint, and what was not done."""
    import typer

    out = console()
    if report.layer_map is not None:
        moved = ", ".join(f"{old}→{new}" for old, new in report.layer_map["index_map"].items() if old != new)
        out.print(f"layer map: {esc(moved or 'no index moves')}")
        out.print(
            f"fresh layers: {esc(report.layer_map['fresh'] or '-')}; dropped: {esc(report.layer_map['dropped'] or '-')}"
        )
    typer.echo(report.diff, nl=False)
    targets = [report.output] if report.output is not None else []
    if report.output is not None and report.output.suffix == ".pt":
        targets.append(report.output.with_suffix(".yaml"))
    would = " and ".join(str(t) for t in targets) or "the output"
    console(stderr=True).print(f"dry run: nothing written (would write {esc(would)})")


def _render_checks(checks: list[Any], stderr: bool = False) -> None:
    if not checks:
        return
    out = console(stderr=stderr)
    rows = [
        Row(
            (
                "[green]✓[/]" if check.ok else "[yellow]-[/]" if check.ok is None else "[red]✗[/]",
                esc(check.name),
                f"[dim]{esc(check.detail)}[/]" if check.detail else "",
            )
        )
        for check in checks
    ]
    # A table without header or rules, so a long detail wraps in its own column instead of under the mark.
    out.print(fit_table(out, CHECK_COLUMNS, rows, show_header=False, box=None)[0])
