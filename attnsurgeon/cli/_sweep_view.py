"""How ``attnsurgeon sweep`` shows itself: the progress bar while it runs, then the table (best first, the
Pareto-optimal variants starred, failures last with their reasons), or the rows as JSON, and where the files went."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from attnsurgeon.cli._common import console, emit_json, esc, fmt_int


def render_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning:[/] {esc(warning)}")


@contextlib.contextmanager
def progress_bar(plain: bool) -> Iterator[Callable[[str, str, int, int], None]]:
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


def render_result(
    job: Any, rows: list[dict[str, Any]], written: list[Path], sort: str | None, pareto: str, markdown: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """The finished sweep: its rows as JSON, or the table sorted by ``sort`` (default: mAP50-95 once trained, else
    gflops) with the Pareto front on ``pareto`` once trained, then what was skipped and the files ``written``."""
    trained = any(isinstance(r.get("mAP50-95"), (int, float)) for r in rows)
    metric = sort or ("mAP50-95" if trained else "gflops")
    if as_json:
        emit_json({"directory": str(job.directory), "rows": rows, "skipped": job.skipped,
                   "plots": [str(p) for p in written]})  # fmt: skip
        return
    render_table(rows, metric, pareto if trained else None, markdown)
    out = console()
    if job.skipped:
        out.print(f"{len(job.skipped)} row(s) already done with these settings: skipped")
    out.print(f"results: {esc(job.directory / 'results.csv')} and results.json")
    for path in written:
        out.print(f"plot: {esc(path)}")


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


def render_table(rows: list[dict[str, Any]], metric: str, pareto: str | None, markdown: bool) -> None:
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
