"""Plots of a sweep (PNG, matplotlib's Agg backend): cost against params and latency, and once trained mAP50-95
against GFLOPs and latency with the Pareto front drawn. Every point is labelled with its variant. With ``--formats``,
``deploy_formats.png``: variants x formats, coloured by the deployed latency ratio to the base, a cross on a failure.

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
from attnsurgeon.sweeps.store import DEPLOY_FORMATS, pareto_front

DEPLOY_STEM = "deploy_formats"

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


@dataclass
class DeployGrid:
    variants: list[str]  # row labels, base first
    formats: list[str]  # columns
    cells: list[list[float | str | None]]  # the ratio, "fail", or None (not done)


def deploy_grid(rows: Sequence[dict[str, Any]]) -> DeployGrid | None:
    """The variants x formats grid of a sweep with ``--formats``; None when no row was deployed."""
    formats = [f for f in DEPLOY_FORMATS if any(r.get(f"{f}_check") or r.get(f"{f}_ratio") for r in rows)]
    if not formats:
        return None
    base = next((r["name"] for r in rows if r["op"] == "base"), "")
    shown = [r for r in rows if r.get("status") == "ok"]
    cells: list[list[float | str | None]] = [
        ["fail" if r.get(f"{f}_check") == "fail" else r.get(f"{f}_ratio") for f in formats] for r in shown
    ]
    return DeployGrid([point_label(r, base) for r in shown], formats, cells)


def render_deploy(grid: DeployGrid, path: Path) -> None:
    """The grid as a heat map: the ratio written in each cell, a cross where the variant fails in that format."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    values = np.array([[c if isinstance(c, (int, float)) else np.nan for c in line] for line in grid.cells], float)
    finite = values[np.isfinite(values)]
    high = max(float(finite.max()) if finite.size else 1.0, 1.01)
    low = min(float(finite.min()) if finite.size else 1.0, 0.99)
    fig = Figure(figsize=(2 + 1.3 * len(grid.formats), 1.5 + 0.35 * len(grid.variants)), dpi=110)
    ax = fig.subplots()
    image = ax.imshow(values, cmap="RdYlGn_r", norm=TwoSlopeNorm(1.0, low, high), aspect="auto")
    for i, line in enumerate(grid.cells):
        for j, cell in enumerate(line):
            if cell == "fail":
                ax.plot([j], [i], marker="x", markersize=14, color="black", markeredgewidth=2.5)
            elif isinstance(cell, (int, float)):
                ax.text(j, i, f"{cell:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(grid.formats)), grid.formats)
    ax.set_yticks(range(len(grid.variants)), grid.variants, fontsize=7)
    ax.set_title("deployed latency / base (× = fails in that format)")
    fig.colorbar(image, ax=ax, label="latency ratio to the base")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    publish(path, buffer.getvalue(), force=True)


def write_plots(rows: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """Every plot the rows allow, as ``directory/plots/<name>.png``."""
    paths = []
    datas = plot_data(rows)
    grid = deploy_grid(rows)
    if datas or grid is not None:
        (directory / "plots").mkdir(exist_ok=True)
    for data in datas:
        path = directory / "plots" / f"{data.stem}.png"
        render(data, path)
        paths.append(path)
    if grid is not None:
        path = directory / "plots" / f"{DEPLOY_STEM}.png"
        render_deploy(grid, path)
        paths.append(path)
    return paths
