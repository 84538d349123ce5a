"""What every editing command (insert, remove, replace) shares: option help, and how its report is shown (what
changed, the checks, the costs, and what was written or, on a dry run, the diff of what would be)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attnsurgeon.cli._common import POSITIONS_HELP, console, emit_json, esc, fmt_delta, fmt_int, from_text
from attnsurgeon.cli._status_line import ProgressCallback, progress
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

MODEL_HELP = (
    "Model YAML path or packaged Ultralytics name, or an Ultralytics .pt checkpoint (every other trained tensor keeps "
    "its value at its new index; the new YAML is written beside the output)."
)
AT_HELP = f"Layer index of the input file, or a named position ({POSITIONS_HELP}); repeatable, or comma-separated."
SCALE_HELP = "Verify at this scale (n/s/m/l/x) or 'all'. Default: the scale in the file name."
CHECKS_HELP = (
    "Extra checks of what breaks after training starts, comma-separated: export (ONNX export matches PyTorch at imgsz "
    "and a rectangular size), half (autocast and float16 weights; Ultralytics' AMP check on CUDA), val (a "
    "rectangular validation batch through the task's postprocessing), or all; export:FORMAT for onnx, torchscript, "
    "openvino, ncnn or all (export:onnx,openvino: Ultralytics' exporter, the file run through AutoBackend; needs "
    "attnsurgeon[deploy]). Default: none."
)
CHECKS_DEVICE_HELP = "Device for --checks: cpu, cuda, cuda:N or a CUDA index N (half and val take the CUDA paths)."
DRY_RUN_HELP = (
    "Write nothing: print the unified diff of the YAML that would be written (and, for a checkpoint, the layer map). "
    "Verifies unless --no-verify."
)


def run_and_render(
    call: Callable[[ProgressCallback], Any], as_json: bool, headline: Callable[[Any], str], quiet: bool = False
) -> None:
    """Run the API call with progress on stderr (none with ``--json`` or ``quiet``); print its report (``--json``:
    one object), or the failed checks before the error line."""
    try:
        with progress(enabled=not as_json and not quiet) as step:
            report = call(step)
    except VerificationError as exc:
        if as_json:
            emit_json({"output": None, "error": str(exc), "checks": [c.as_dict() for c in exc.checks]})
        else:
            render_checks(exc.checks, stderr=True)
        raise
    if as_json:
        emit_json(report.as_dict())
        return
    render(report, headline(report))


def render(report: Any, headline: str) -> None:
    out = console()
    for warning in report.warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    out.print(headline)
    if report.imported:  # code that ran: the plugin and class files the build imported
        out.print(f"imported: {esc(', '.join(report.imported))}")
    if report.positions:
        named = "; ".join(f"{name} = {', '.join(map(str, hits))}" for name, hits in report.positions.items())
        out.print(f"positions: {esc(named)}")
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
    render_checks(report.checks)
    if report.skipped:  # a skipped check is not a passed one
        names = ", ".join(c.name for c in report.skipped)
        out.print(f"[yellow]partly verified:[/] skipped {esc(names)}")
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


def render_checks(checks: list[Any], stderr: bool = False) -> None:
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
