"""``attnsurgeon adopt``: rewrite a forked-Ultralytics YAML so plain Ultralytics with attnsurgeon builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, fmt_int, with_plugins
from attnsurgeon.cli._options import JsonOpt, with_run_options
from attnsurgeon.cli._report_view import render_checks
from attnsurgeon.cli._status_line import progress
from attnsurgeon.errors import AttnSurgeonError
from attnsurgeon.ops.run_options import RunOptions


def register(app: typer.Typer) -> None:
    app.command(
        "adopt",
        help="Rewrite a YAML written for a forked Ultralytics (attention rows with channel counts, fork names and "
        "argument orders) into one plain Ultralytics builds with attnsurgeon; show each change and why, list rows "
        "it cannot map, diagnose dead layers, stale references, index comments and the scale in the file name, "
        "verify the result and write it.",
    )(adopt)


@errors_to_exit
@with_plugins
@with_run_options(
    "", "force", "dry_run", "scale", "imgsz", "no_verify",
    output_help="Output YAML (default: <input stem>-adopted.yaml next to the input).",
)  # fmt: skip
def adopt(
    model: Annotated[str, typer.Argument(help="The forked-Ultralytics model YAML.")],
    options: RunOptions = RunOptions(),
    fix_stale: Annotated[
        bool,
        typer.Option(
            "--fix-stale",
            help="Also point each stale reference (a renumbering that missed an added row; see the diagnosis) at the "
            "layer it meant in the packaged model the file derives from.",
        ),
    ] = False,
    where: Annotated[
        str | None,
        typer.Option("--where", help="Where a fork block's attention goes (C2f_EMA -> Augment): bottleneck or output."),
    ] = None,
    fork: Annotated[
        Path | None,
        typer.Option(
            "--fork",
            help="The fork's Python source folder or file, read with ast (never run) to place a fork block's "
            "attention and to find the class a block named after the fork's own attention (C2f_Attention) uses. "
            "Verification builds the written YAML, which imports the files of the classes it names (listed as "
            "'imported'); --no-verify imports nothing.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    from attnsurgeon.ops.adopt import adopt as run_adopt

    dry_run = options.dry_run

    try:
        with progress(enabled=not as_json and options.verify) as step:
            step(f"adopting {model}: building and checking the result")
            report = run_adopt(model, fix_stale=fix_stale, where=where, fork=fork, options=options)
    except AttnSurgeonError as exc:
        failed = getattr(exc, "report", None)
        if failed is not None:
            if as_json:
                emit_json({**failed.as_dict(), "output": None, "error": str(exc)})
            else:
                _render(failed, stderr=True)
        raise
    if as_json:
        emit_json({**report.as_dict(), "diff": report.diff} if dry_run else report.as_dict())
        return
    _render(report)
    if dry_run and report.diff:
        console().print(esc(report.diff), end="")


def _render(report: Any, stderr: bool = False) -> None:
    out = console(stderr=stderr)
    err = console(stderr=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {esc(warning)}")
    out.print(f"adopt [bold]{esc(report.source)}[/] (scale {report.scale or '-'})")
    if report.imported:  # code that ran: the fork's and plugin files verification imported
        out.print(f"imported: {esc(', '.join(report.imported))}")
    if not report.changes and not report.unmapped and report.repository:
        repo = f"{report.repository}-repository file"
        out.print(f"nothing to change for attnsurgeon; Ultralytics cannot build this {repo} (see the warning)")
    elif not report.changes and not report.unmapped:
        out.print("nothing to change: every row already builds as written in plain Ultralytics with attnsurgeon")
    if report.changes:
        out.print("changed:")
        for change in report.changes:
            out.print(f"  layer {change.layer}: {esc(change.old)} -> {esc(change.new)}")
            out.print(_indented(f"[dim]{esc(change.why)}[/]", 4))
    if report.unmapped:
        out.print("cannot map:")
        for row in report.unmapped:
            closest = f" (closest: {', '.join(row.closest)})" if row.closest else ""
            out.print(f"  layer {row.layer}: {esc(row.row)}{esc(closest)}")
            out.print(_indented(f"[dim]{esc(row.why)}[/]", 4))
    if report.findings:
        out.print("diagnosis:")
        for finding in report.findings:
            out.print(_indented(f"{finding.kind}: {esc(finding.message)}", 2))
        if any(f.kind == "stale" for f in report.findings):
            out.print("  [dim]--fix-stale rewrites the stale references as suggested[/]")
    render_checks(report.checks, stderr=stderr)
    for index, params in report.params.items():
        out.print(f"layer {index}: {fmt_int(params)} params")
    if report.output is not None:
        out.print(f"wrote [bold]{esc(report.output)}[/]")


def _indented(markup: str, columns: int) -> Any:
    """Text whose wrapped lines keep its indent on a narrow terminal (no trailing spaces on a wide one)."""
    from rich.padding import Padding

    return Padding(markup, (0, 0, 0, columns), expand=False)
