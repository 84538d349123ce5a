"""Plots of a sweep (PNG, matplotlib's Agg backend): cost against params and latency, and once trained mAP50-95
against GFLOPs and latency with the Pareto front drawn. Every point is labelled with its variant.

:func:`plot_data` computes what a plot shows (points, labels, front) without matplotlib; :func:`render` draws it and
returns the labels it wrote, so tests check the data, not pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsurgeon.core.publish import publish
from attnsurgeon.sweeps.store import pareto_front

# file stem, x column, y column, Pareto front (lower x, higher y)
PLOTS = (
    ("cost_params", "params", "gflops", False),
    ("cost_latency", "latency_ms", "gflops", False),
    ("map_gflops", "gflops", "mAP50-95", True),
    ("map_latency", "latency_ms", "mAP50-95", True),
)
LABELS = {
    "params": "parameters",
    "gflops": "GFLOPs (Ultralytics)",
    "latency_ms": "latency, median (ms)",
    "mAP50-95": "mAP50-95",
}


@dataclass
class PlotData:
    stem: str
    title: str
    x: str
    y: str
    points: list[tuple[str, float, float]]  # (label, x, y)
    front: list[str]  # labels on the Pareto front, by increasing x (empty when the plot has none)


def point_label(row: dict[str, Any], base_name: str) -> str:
    """The variant name without the model's name (``SE-after8``); the base row is ``base``."""
    if row["op"] == "base":
        return "base"
    name = str(row["name"])
    return name[len(base_name) + 1 :] if name.startswith(base_name + "-") else name


def plot_data(rows: Sequence[dict[str, Any]]) -> list[PlotData]:
    """One PlotData per plot that at least two rows have values for."""
    base = next((r["name"] for r in rows if r["op"] == "base"), "")
    out = []
    for stem, x, y, with_front in PLOTS:
        points = [
            (point_label(r, base), float(r[x]), float(r[y]))
            for r in rows
            if r.get("status") == "ok" and isinstance(r.get(x), (int, float)) and isinstance(r.get(y), (int, float))
        ]
        if len(points) < 2:
            continue
        front: list[str] = []
        if with_front:
            idx = pareto_front([(px, py) for _, px, py in points])
            front = [points[i][0] for i in sorted(idx, key=lambda i: (points[i][1], points[i][2]))]
        title = f"{LABELS[y]} vs {LABELS[x]}" + (" (Pareto front)" if with_front else "")
        out.append(PlotData(stem, title, x, y, points, front))
    return out


def render(data: PlotData, path: Path) -> list[str]:
    """Draw one plot into a PNG at ``path``; returns the point labels written on it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6), dpi=110)
    ax = fig.subplots()
    on_front = set(data.front)
    for label, x, y in data.points:
        colour = "tab:red" if label == "base" else "tab:orange" if label in on_front else "tab:blue"
        ax.scatter([x], [y], color=colour, zorder=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if data.front:
        xy = {label: (x, y) for label, x, y in data.points}
        ax.plot([xy[n][0] for n in data.front], [xy[n][1] for n in data.front], "--", color="tab:orange",
                label="Pareto front", zorder=2)  # fmt: skip
        ax.legend(loc="lower right")
    ax.set_xlabel(LABELS[data.x])
    ax.set_ylabel(LABELS[data.y])
    ax.set_title(data.title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    publish(path, buffer.getvalue(), force=True)  # the sweep's own plots, redrawn on every run
    return [t.get_text() for t in ax.texts]


def write_plots(rows: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """Every plot the rows allow, as ``directory/plots/<name>.png``."""
    paths = []
    datas = plot_data(rows)
    if datas:
        (directory / "plots").mkdir(exist_ok=True)
    for data in datas:
        path = directory / "plots" / f"{data.stem}.png"
        render(data, path)
        paths.append(path)
    return paths
