"""``attnsurgeon sweep``: every module x position made, checked, costed (and trained), in one table and plots."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, fail, fmt_int, with_plugins
from attnsurgeon.core.sizes import DEFAULT_IMGSZ

FAILED_EXIT = 9  # as VerificationError: some variant failed a check or its training


def register(app: typer.Typer) -> None:
    app.command(
        "sweep",
        help="Make every variant (module x position x args), verify and cost each (params, GFLOPs, exact FLOPs, "
        "latency), optionally train each with Ultralytics (--train), and compare them: results.csv/json, a table "
        "with the Pareto-optimal variants marked, plots. A rerun skips what is done.",
    )(sweep)


@errors_to_exit
@with_plugins
def sweep(
    model: str = typer.Argument(
        ..., autocompletion=_complete.models, help="Model YAML path or packaged Ultralytics name (yolo11n.yaml)."
    ),
    modules: str = typer.Option(
        ..., "--modules", "-m", help="Catalog modules: SE,CBAM,EMA | all | category:channel (mixable)."
    ),
    at: list[str] = typer.Option(
        ...,
        "--at",
        "-a",
        help="Positions: layer indices (8,10), 4+6+8 for one variant with three layers, or named "
        "positions (heads, sppf, every:C3k2) where available; repeatable.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Directory for the variants' YAMLs, results and plots."),
    op: str = typer.Option(
        "insert",
        "--op",
        help="insert: a layer after the position; augment: attention inside "
        "the block at the position (where this version has augment).",
    ),
    args_grid: list[str] = typer.Option(
        [], "--args-grid", help='Hyper-parameter sets per module, e.g. "SE=[8]|[16]"; repeatable. Default: defaults.'
    ),
    scale: str | None = typer.Option(
        None, "--scale", autocompletion=_complete.scales, help="Scale n/s/m/l/x. Default: the one in the file name."
    ),
    imgsz: int = typer.Option(DEFAULT_IMGSZ, "--imgsz", help="Square image size for checks and costs (and training)."),
    device: str = typer.Option(
        "cpu",
        "--device",
        "-d",
        help="cpu, cuda, N; training: several, 0,1,2,3 (one "
        "variant per device at a time). Costs are measured on the first.",
    ),
    checks: str = typer.Option(
        "layer",
        "--checks",
        help="layer: insert's checks on each new layer at the shapes "
        "it sees in the model (fast); model: insert's whole-model checks.",
    ),
    latency: str = typer.Option(
        "delta", "--latency", help="delta: base latency + the new layers timed alone; full: every variant timed whole."
    ),
    runs: int | None = typer.Option(
        None,
        "--runs",
        help="Timed runs of the base (and of each variant with --latency full). Default: as many as fit in about a "
        "second (the base), as profile does (--latency full).",
    ),
    train: Path | None = typer.Option(None, "--train", help="Ultralytics data.yaml: train every variant on it."),
    epochs: int = typer.Option(1, "--epochs", help="Training epochs per variant."),
    batch: int = typer.Option(16, "--batch", "-b", help="Training batch size."),
    train_imgsz: int | None = typer.Option(None, "--train-imgsz", help="Training image size. Default: --imgsz."),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        help="Start every variant from this .pt (checkpoint surgery), the base included, so the comparison is fair.",
    ),
    identity_init: bool = typer.Option(
        True, "--identity-init/--no-identity-init", help="With --weights: new layers start as the identity."
    ),
    formats: str | None = typer.Option(
        None,
        "--formats",
        help="Also export every variant to these formats (onnx,torchscript,openvino,ncnn), check it there and time "
        "it in the runtime against the base's export: pass/fail and latency ratio per format.",
    ),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Redo rows that failed in an earlier run."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Train on Ray Tune, one trial per variant: 'local' starts a "
        "local Ray, or give a cluster address (auto, ray://host:10001).",
    ),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="Ray: GPUs per trial."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="Ray: CPUs per trial."),
    asha: bool = typer.Option(False, "--asha", help="Ray: stop weak trials early (ASHA on mAP50-95)."),
    sort: str | None = typer.Option(
        None,
        "--sort",
        help="Sort by params, gflops, gflops_exact, latency_ms, mAP50, mAP50-95, precision, recall. "
        "Default: mAP50-95 once trained, else gflops.",
    ),
    pareto: str = typer.Option(
        "gflops", "--pareto", help="Cost axis of the Pareto front against mAP50-95: gflops, latency_ms or params."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="Print the table as Markdown (for papers and READMEs)."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write PNG plots into OUTPUT/plots."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON; progress as plain lines."),
) -> None:
    from attnsurgeon.sweeps import runner as sweep_mod
    from attnsurgeon.sweeps.store import METRICS

    for value, option, allowed in ((sort, "--sort", METRICS), (pareto, "--pareto", ("gflops", "latency_ms", "params"))):
        if value is not None and value not in allowed:
            raise fail(f"{option} {value!r}: use one of {', '.join(allowed)}", 2)
    job = sweep_mod.start(
        sweep_mod.SweepPlan(
            model, modules, at, output, op=op, args_grid=args_grid, scale=scale, imgsz=imgsz,
            device=device.split(",")[0], checks=checks, latency=latency, runs=runs, train=train, epochs=epochs,
            batch=batch, train_imgsz=train_imgsz, train_device=device if train is not None else None, weights=weights,
            identity_init=identity_init, formats=formats,
        )
    )  # fmt: skip
    for warning in job.warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")
    try:
        with _progress(plain=as_json) as step:
            sweep_mod.run(job, retry_failed, _ray_value(ray), gpus_per_trial, cpus_per_trial, asha, step)
    except KeyboardInterrupt:
        kept = len(job.rows())
        raise fail(
            f"interrupted; {kept} row(s) kept in {job.directory / 'results.csv'}; rerun to finish", 130
        ) from None
    rows = job.rows()
    written = []
    if plots:
        from attnsurgeon.sweeps.plot import write_plots

        written = write_plots(rows, job.directory)
    trained = any(isinstance(r.get("mAP50-95"), (int, float)) for r in rows)
    metric = sort or ("mAP50-95" if trained else "gflops")
    if as_json:
        emit_json({"directory": str(job.directory), "rows": rows, "skipped": job.skipped,
                   "plots": [str(p) for p in written]})  # fmt: skip
    else:
        _render(rows, metric, pareto if trained else None, markdown)
        out = console()
        if job.skipped:
            out.print(f"{len(job.skipped)} row(s) already done with these settings: skipped")
        out.print(f"results: {esc(job.directory / 'results.csv')} and results.json")
        for path in written:
            out.print(f"plot: {esc(path)}")
    failed = job.failed
    if failed:
        names = ", ".join(r["name"] for r in failed[:5]) + (" ..." if len(failed) > 5 else "")
        raise fail(f"{len(failed)} of {len(rows)} variants failed ({names}); see the reason column", FAILED_EXIT)


def _ray_value(ray: str | None) -> str | bool | None:
    if ray is None:
        return None
    return True if ray.strip().lower() in ("", "local") else ray


@contextlib.contextmanager
def _progress(plain: bool) -> Iterator[Callable[[str, str, int, int], None]]:
    """A progress bar with the current variant and an ETA on stderr; plain lines when not a terminal or --json."""
    err = console(stderr=True)
    pace: dict[str, tuple[float, int]] = {}  # stage -> (when its first variant started, rows done then)
    if plain or not err.is_terminal:

        def line(stage: str, name: str, done: int, total: int) -> None:
            if stage in ("cost", "train"):
                started, first = pace.setdefault(stage, (time.perf_counter(), done))
                finished = done - first
                eta = _eta(time.perf_counter() - started, finished, total - done)
                print(f"[{done + 1}/{total}] {name}: {stage}{eta}", file=sys.stderr, flush=True)

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:  # fmt: skip
        task = bar.add_task("sweep", total=None)

        def step(stage: str, name: str, done: int, total: int) -> None:
            bar.update(task, description=f"{stage} {esc(name)}", completed=done, total=total)

        yield step


def _eta(spent: float, finished: int, left: int) -> str:
    """Time left at this stage's pace so far (rows skipped as done do not count)."""
    if finished <= 0:
        return ""
    m, s = divmod(int(spent / finished * left), 60)
    h, m = divmod(m, 60)
    return f", eta {h}:{m:02d}:{s:02d}"


COLUMNS = (  # (row key, header, formatter)
    ("name", "variant", str),
    ("params", "params", fmt_int),
    ("gflops", "GFLOPs", lambda v: f"{v:.2f}"),
    ("gflops_exact", "GFLOPs exact", lambda v: f"{v:.4f}"),
    ("latency_ms", "latency ms", lambda v: f"{v:.2f}"),
    ("mAP50", "mAP50", lambda v: f"{v:.4f}"),
    ("mAP50-95", "mAP50-95", lambda v: f"{v:.4f}"),
    ("precision", "P", lambda v: f"{v:.3f}"),
    ("recall", "R", lambda v: f"{v:.3f}"),
    ("train_s", "train s", lambda v: f"{v:.1f}"),
)


def table_cells(rows: list[dict[str, Any]], metric: str, pareto: str | None) -> tuple[list[str], list[list[str]]]:
    """Header and cells, best first by ``metric``; ★ marks the Pareto-optimal rows; failures last with reasons."""
    from attnsurgeon.sweeps.store import DEPLOY_FORMATS, pareto_rows, sort_rows

    front = pareto_rows(rows, pareto) if pareto else set()
    shown = [c for c in COLUMNS if c[0] == "name" or any(r.get(c[0]) is not None for r in rows)]
    deployed = [f for f in DEPLOY_FORMATS if any(r.get(f"{f}_check") or r.get(f"{f}_ratio") for r in rows)]
    header = [h for _, h, _ in shown] + [f"{f} ×base" for f in deployed] + ["status"]
    cells = []
    for r in sort_rows([r for r in rows if r["status"] == "ok"], metric) + [r for r in rows if r["status"] != "ok"]:
        line = [("★ " if r["key"] in front else "") + r["name"] + (" (base)" if r["op"] == "base" else "")]
        line += ["-" if r.get(k) is None else fmt(r[k]) for k, _, fmt in shown[1:]]
        line += [_deployed_cell(r, f) for f in deployed]
        line.append(r["status"] if r.get("train_status") != "failed" else "train failed")
        cells.append(line)
    return header, cells


def _deployed_cell(row: dict[str, Any], fmt: str) -> str:
    """A format's cell: its latency ratio to the base's, ✗ when the variant fails there, - when not done."""
    if row.get(f"{fmt}_check") == "fail":
        return "✗"
    ratio = row.get(f"{fmt}_ratio")
    return f"{ratio:.2f}" if isinstance(ratio, (int, float)) else "-"


def failure_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per failed variant: its name and why (the table shows only that it failed); one per format a
    variant failed in (``sweep --formats``)."""
    notes = [f"{r['name']}: {r.get('reason') or 'no reason recorded'}" for r in rows
             if r["status"] != "ok" or r.get("train_status") == "failed"]  # fmt: skip
    return notes + [f"{r['name']} / {fmt}: {why}" for r in rows for fmt, why in (r.get("deploy_reasons") or {}).items()]


def _render(rows: list[dict[str, Any]], metric: str, pareto: str | None, markdown: bool) -> None:
    header, cells = table_cells(rows, metric, pareto)
    note = f"sorted by {metric}" + (f"; ★ Pareto-optimal ({pareto} vs mAP50-95)" if pareto else "")
    notes = failure_notes(rows)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |" for line in cells]
        typer.echo("\n".join(lines) + f"\n\n{note}" + "".join(f"\n- {n}" for n in notes))
        return
    from rich.table import Table

    table = Table(title=f"sweep: {note}", title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i in (0, len(header) - 1) else "right", overflow="fold")
    for line in cells:
        table.add_row(*(esc(c) for c in line), style="red" if line[-1] != "ok" else None)
    out = console()
    out.print(table)
    for n in notes:
        out.print(f"[red]failed[/] {esc(n)}")
