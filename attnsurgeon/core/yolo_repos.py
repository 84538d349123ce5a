"""Model YAMLs from the original YOLOv5, YOLOv7 and YOLOv9 repositories: which rows Ultralytics cannot build, and why.

The surgery reads these files like any other (``from``/repeats/module/args rows); only building needs the modules.
Ultralytics 8.4 has YOLOv9's RepNCSPELAN4, ADown, SPPELAN, CBLinear and CBFuse, but not its Silence or (Dual)DDetect
heads, none of YOLOv7's own modules, and its ``Detect`` is anchor-free: ``Detect, [nc, anchors]`` (YOLOv5's
anchor-based head) would reach its constructor as a TypeError. No torch, no printing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnsurgeon.core.graph import Graph
from attnsurgeon.errors import ModelFileError, SurgeryError

YOLOV5 = ("YOLOv5", "github.com/ultralytics/yolov5")
YOLOV7 = ("YOLOv7", "github.com/WongKinYiu/yolov7")
YOLOV9 = ("YOLOv9", "github.com/WongKinYiu/yolov9")

# Modules of those repositories that ``ultralytics.nn.tasks`` 8.4 does not define.
REPO_MODULES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(
        (
            "IDetect",
            "IAuxDetect",
            "IBin",
            "IKeypoint",
            "MP",
            "SP",
            "SPPCSPC",
            "SPPCSPCC",
            "ReOrg",
            "DownC",
            "Shortcut",
            "ImplicitA",
            "ImplicitM",
            "RepConv_OREPA",
            "Stem",
            "SPPFCSPC",
        ),
        YOLOV7,
    ),
    **dict.fromkeys(
        ("Silence", "DDetect", "DualDetect", "DualDDetect", "TripleDetect", "TripleDDetect", "Panoptic", "RepNCSP"),
        YOLOV9,
    ),
    **dict.fromkeys(("Contract", "Expand"), YOLOV5),
}
# The modules the YOLOv5 repository's parse_model builds (models/common.py, models/yolo.py, models/experimental.py):
# a YOLOv5-repository file naming another Ultralytics module (PSA, C2f) names a fork's own module of that name.
YOLOV5_OWN = frozenset(
    {
        "Conv", "DWConv", "DWConvTranspose2d", "TransformerBlock", "Bottleneck", "BottleneckCSP", "CrossConv", "C3",
        "C3x", "C3TR", "C3SPP", "C3Ghost", "SPP", "SPPF", "Focus", "GhostConv", "GhostBottleneck", "Contract",
        "Expand", "Concat", "Detect", "Segment", "Classify", "Proto", "MixConv2d", "Sum",
    }
)  # fmt: skip
ANCHOR_HEADS = ("Detect", "Segment")  # with [nc, anchors, ...] these are YOLOv5's anchor-based heads


@dataclass(frozen=True)
class Unbuildable:
    layer: int
    module: str
    why: str
    repo: tuple[str, str]


def _anchor_based(module: str, args: tuple[Any, ...], data: dict[str, Any]) -> bool:
    if module not in ANCHOR_HEADS or len(args) < 2:
        return False
    second = args[1]
    return second == "anchors" or (isinstance(second, list) and "anchors" in data)


def unbuildable(graph: Any, data: dict[str, Any]) -> list[Unbuildable]:
    """Rows of ``graph`` (``data``: the plain YAML dict) that only their original repository can build."""
    out = []
    for i, row in enumerate(graph.rows):
        if row.module in REPO_MODULES:
            repo = REPO_MODULES[row.module]
            out.append(Unbuildable(i, row.module, f"{row.module} is a {repo[0]}-repository module", repo))
        elif _anchor_based(row.module, row.args, data):
            repo = YOLOV7 if any(u.repo == YOLOV7 for u in out) else YOLOV5
            out.append(Unbuildable(i, row.module, f"anchor-based {row.module} [nc, anchors]", repo))
    return out


def origin(found: list[Unbuildable]) -> tuple[str, str]:
    """The repository a file comes from: the one most of its unbuildable rows belong to (a later one wins ties)."""
    order = [YOLOV5, YOLOV7, YOLOV9]
    return max(order, key=lambda r: (sum(u.repo == r for u in found), order.index(r)))


def message(source: str, found: list[Unbuildable], edited: bool = False) -> str:
    """One line: which rows, why, what to do; ``edited``: the file was edited without a build (``--no-verify``)."""
    name, url = origin(found)
    shown = ", ".join(f"layer {u.layer} ({u.why})" for u in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    if edited:
        return (
            f"{source} is a {name}-repository file: Ultralytics cannot build {shown}{more}; edited without a build "
            f"(--no-verify): build it with that repository ({url})"
        )
    return (
        f"{source}: Ultralytics cannot build {shown}{more}: this is a {name}-repository file; --no-verify (and show "
        f"--no-build) edit it, or build it with that repository ({url})"
    )


def refuse_build(source: str, graph: Any, data: dict[str, Any]) -> None:
    """Raise the one-line message before anything is built, for a file only its own repository builds."""
    found = unbuildable(graph, data)
    if found:
        raise ModelFileError(message(source, found))


def refuse_cfg(source: str, cfg: dict[str, Any]) -> None:
    """:func:`refuse_build` for a plain YAML dict (what every build is given): the one check before any model is
    built, whichever command builds it."""
    try:
        graph = Graph.from_sections(cfg["backbone"], cfg["head"])
    except (KeyError, TypeError, SurgeryError):
        return  # not rows this reader knows: the builder says what is wrong
    refuse_build(source, graph, cfg)


def buildable(doc: Any) -> dict[str, Any]:
    """``doc``'s plain dict, for building it; a file only its own repository builds is refused in one line."""
    data = doc.plain()
    refuse_build(str(doc.path), doc.graph, data)
    return data
