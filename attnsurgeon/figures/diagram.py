"""``show --plot``: the architecture figure of a model's layer graph, the way papers draw it.

:func:`diagram` is torch-free: nodes (one per layer: module, channels and stride at the scale, backbone / neck /
head, highlighted or not) and edges (every reference of every row, the input image as ``-1``), from the YAML alone.
:func:`draw` lays them out and renders PNG or SVG with matplotlib, imported there and only there (no Graphviz):
backbone down the left column, neck in the middle, heads on the right; a row's input from the row just above it is a
straight arrow, any other reference (a skip, a Concat input, a head input) a curved one.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from attnsurgeon.core import channels, positions, publish
from attnsurgeon.core.augment_graph import augment_info
from attnsurgeon.core.graph import INPUT, Graph
from attnsurgeon.core.scales import builds_at
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import UsageError
from attnsurgeon.figures.new_layers import attention_rows, label, new_rows

FORMATS = ("png", "svg")
COLUMN = {"backbone": 0.0, "neck": 1.0, "head": 2.0}
FILL = {"backbone": "#dbe8f6", "neck": "#e3f1de", "head": "#ece2f3"}
NEW_FILL, NEW_EDGE = "#ffb347", "#c0392b"


@dataclass(frozen=True)
class Node:
    index: int
    module: str  # as written in the row
    label: str  # as drawn: C3k2+EMA for an Augment block
    role: str  # backbone, neck or head
    channels: int | None  # output channels at the scale (None: not known from the YAML)
    stride: int | None  # output stride relative to the image (None: not a feature map)
    highlighted: bool

    @property
    def text(self) -> str:
        size = " ".join(x for x in (f"c{self.channels}" if self.channels else "", _level(self.stride)) if x)
        return f"{self.index} {self.label}" + (f"\n{size}" if size else "")


@dataclass(frozen=True)
class Diagram:
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]  # (source, target) in reading order; source -1 is the input image

    @property
    def highlighted(self) -> list[int]:
        return [n.index for n in self.nodes if n.highlighted]

    def as_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            "nodes": [n.__dict__ | {"text": n.text} for n in self.nodes],
            "edges": [list(e) for e in self.edges],
            "highlighted": self.highlighted,
        }


def _level(stride: int | None) -> str:
    if not stride:
        return ""
    return f"P{stride.bit_length() - 1}/{stride}" if stride & (stride - 1) == 0 else f"/{stride}"


def role(graph: Graph, index: int) -> str:
    row = graph.rows[index]
    if row.section == "backbone":
        return "backbone"
    return "head" if row.module in positions.HEAD_MODULES else "neck"


def diagram(
    graph: Graph, title: str = "", data: dict | None = None, scale: str = "", highlight: Iterable[int] = ()
) -> Diagram:
    """Nodes and edges of ``graph``; channels at ``scale`` of ``data`` (the YAML), ``highlight`` the marked rows."""
    width, cap = channels.scale_factors(data or {}, scale)
    chans = channels.layer_channels(_blocks_only(graph), width, cap, int((data or {}).get("ch", 3) or 3))
    strides = positions.strides(graph)
    marked = set(highlight)
    nodes = tuple(
        Node(i, row.module, label(row), role(graph, i), chans[i], strides[i], i in marked)
        for i, row in enumerate(graph.rows)
    )
    edges = tuple((t, i) for i in range(len(graph)) for t in graph.absolute(i))
    return Diagram(title, nodes, edges)


def _blocks_only(graph: Graph) -> Graph:
    """``graph`` with each Augment row as its block: an augmented block has the base block's channels."""
    rows = []
    for row in graph.rows:
        info = augment_info(row)
        rows.append(dataclasses.replace(row, module=info["block"], args=tuple(info["block_args"])) if info else row)
    return Graph(tuple(rows))


def highlight_rows(doc_graph: Graph, highlight: Iterable[int] = (), base: Graph | None = None) -> list[int]:
    """What to mark: the rows new against ``base`` when one is given, else every attention row; plus ``highlight``."""
    extra = list(highlight)
    for i in extra:
        if not 0 <= i < len(doc_graph):
            raise UsageError(f"--highlight {i} is outside the model, which has layers 0 to {len(doc_graph) - 1}")
    if base is not None:
        return sorted(set(new_rows(base, doc_graph)) | set(extra))
    return attention_rows(doc_graph, extra)


def plot_format(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"--plot {path}: the file name must end in .png or .svg")
    return fmt


CHECKPOINT_SUFFIXES = (".pt", ".pth")


def read_model(spec: str | Path) -> tuple[Graph, dict, str, Path, str]:
    """(graph, plain YAML tree, name for the title, file read, its scale) of a YAML, a packaged name or a checkpoint
    (the architecture it stores, ``model.yaml``; reading it needs torch)."""
    path = Path(spec)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        from attnsurgeon.ultralytics_bridge import checkpoints

        ckpt = checkpoints.load_checkpoint(path)
        return ckpt.graph, ckpt.cfg, path.name, ckpt.path, str(ckpt.cfg.get("scale") or "")
    doc = model_doc.load(spec)
    return doc.graph, doc.plain(), doc.stem, doc.path, builds_at(doc.scales, doc.scale)


def plot_model(
    model: str | Path,
    output: str | Path,
    scale: str | None = None,
    highlight: Iterable[int] = (),
    base: str | Path | None = None,
    force: bool = False,
) -> Diagram:
    """Draw ``model`` (a YAML, packaged name or .pt checkpoint) to ``output`` (.png/.svg); returns the diagram drawn.
    Marks the attention rows (or, with ``base``, a YAML or checkpoint, the rows new against it) and the rows in
    ``highlight``."""
    out = Path(output)
    fmt = plot_format(out)
    graph, plain, name, path, stored = read_model(model)
    publish.check_output(out, force, (path,))
    chosen = scale if scale is not None else stored
    marked = highlight_rows(graph, highlight, read_model(base)[0] if base is not None else None)
    title = f"{name}" + (f" (scale {chosen})" if chosen else "")
    made = diagram(graph, title, plain, chosen, marked)
    publish.publish(out, render(made, fmt), force=force)
    return made


def layout(d: Diagram) -> dict[int, tuple[float, float]]:
    """(x, y) of every node and of the input (-1): columns by role, rows in reading order within a column."""
    where: dict[int, tuple[float, float]] = {INPUT: (COLUMN["backbone"], 0.0)}
    counts = {"backbone": 1, "neck": 0, "head": 0}
    heads = [n for n in d.nodes if n.role == "head"]
    necks = sum(1 for n in d.nodes if n.role == "neck")
    for n in d.nodes:
        if n.role == "head":
            continue
        where[n.index] = (COLUMN[n.role], -float(counts[n.role] + (1 if n.role == "neck" else 0)))
        counts[n.role] += 1
    for k, n in enumerate(heads):  # heads beside the middle of the neck
        where[n.index] = (COLUMN["head"], -(necks / 2 + 1 + k * 1.5))
    return where


def render(d: Diagram, fmt: str) -> bytes:
    """The figure as PNG or SVG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

    where = layout(d)
    depth = max(-y for _, y in where.values()) + 1
    fig = plt.figure(figsize=(11, max(4.0, 0.62 * depth + 1.2)), dpi=100)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.94))
    ax.set_xlim(-0.5, 2.5)
    ax.set_ylim(-depth - 0.2, 0.8)
    ax.axis("off")
    box_w, box_h = 0.62, 0.44
    for src, dst in d.edges:
        (x0, y0), (x1, y1) = where[src], where[dst]
        straight = x0 == x1 and abs(y0 - y1) <= 1.01
        if straight:
            start, end, style = (x0, y0 - box_h / 2), (x1, y1 + box_h / 2), "arc3"
        else:
            side = box_w / 2 if x1 >= x0 else -box_w / 2
            start = (x0 + (side if x0 != x1 else box_w / 2), y0)
            end = (x1 - (side if x0 != x1 else -box_w / 2), y1)
            style = f"arc3,rad={-0.35 if x0 == x1 else 0.08}"
        ax.add_patch(FancyArrowPatch(start, end, connectionstyle=style, arrowstyle="-|>", mutation_scale=9,
                                     lw=1.0 if straight else 0.8, color="#444" if straight else "#7f8c8d",
                                     alpha=1.0 if straight else 0.75, zorder=1))  # fmt: skip
    ax.add_patch(FancyBboxPatch((-box_w / 2, -box_h / 2), box_w, box_h, boxstyle="round,pad=0.02", fc="white",
                                ec="#333", zorder=2))  # fmt: skip
    ax.text(0, 0, "input image", ha="center", va="center", fontsize=8, zorder=3)
    for n in d.nodes:
        x, y = where[n.index]
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.02",
                                    fc=NEW_FILL if n.highlighted else FILL[n.role],
                                    ec=NEW_EDGE if n.highlighted else "#555", lw=1.8 if n.highlighted else 0.8,
                                    zorder=2))  # fmt: skip
        ax.text(x, y, n.text, ha="center", va="center", fontsize=7.5, zorder=3,
                fontweight="bold" if n.highlighted else "normal")  # fmt: skip
    for name, x in COLUMN.items():
        ax.text(x, 0.6, name, ha="center", va="center", fontsize=10, fontweight="bold", color="#333")
    handles = [Patch(fc=FILL[r], ec="#555", label=r) for r in COLUMN]
    if d.highlighted:
        handles.append(Patch(fc=NEW_FILL, ec=NEW_EDGE, label="new layer"))
    fig.legend(
        handles=handles, loc="upper right", bbox_to_anchor=(0.96, 0.995), fontsize=8, frameon=False, ncol=len(handles)
    )
    fig.suptitle(d.title, x=0.02, ha="left", fontsize=11, fontweight="bold")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, metadata={"Software": None} if fmt == "png" else {"Date": None})
    plt.close(fig)
    return buffer.getvalue()
