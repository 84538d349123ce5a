"""A model on its way into any command: load it, diagnose it, refuse what blocks. No torch (a ``.pt`` imports it).

:func:`open_source` is the one call every surgery makes before it plans (:func:`load_checked` for a command that takes
YAMLs only): the file is read with the plugin files it lists, diagnosed (:mod:`attnsurgeon.ops.diagnose`), and a
file written for a forked Ultralytics stops here with one line naming ``attnsurgeon adopt``. Forks edit
``parse_model`` so attention rows carry a channel count (``[-1, 1, CBAM, [1024]]``) or list their hyper-parameters
in the fork's own order; plain Ultralytics with attnsurgeon would build those rows as different modules.
:func:`refuse_new_rows` is the same refusal for the rows a surgery plans, before anything is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import REGISTRY
from attnsurgeon.catalog.argcheck import format_flow
from attnsurgeon.core import yolo_repos
from attnsurgeon.core.graph import Graph
from attnsurgeon.core.scales import builds_at, scale_names
from attnsurgeon.core.yamlfile import model_doc, text_writer
from attnsurgeon.errors import ModuleArgsError, NeedsAdoptionError
from attnsurgeon.ops import diagnose, fork_blocks
from attnsurgeon.sources import plugins, recorded


@dataclass
class Source:
    """A model to operate on: a YAML (path or packaged name) or an Ultralytics checkpoint, with its layer graph."""

    kind: str  # "yaml" or "checkpoint"
    path: Path
    stem: str
    graph: Graph
    doc: model_doc.ModelDoc | None = None
    checkpoint: Any = None  # attnsurgeon.ultralytics_bridge.checkpoints.Checkpoint


def is_checkpoint(model: str | Path) -> bool:
    return Path(str(model)).suffix.lower() == ".pt"


def open_source(model: str | Path) -> Source:
    """Load ``model``: a ``.pt`` checkpoint (imports torch) or a YAML path / packaged name (torch-free)."""
    if is_checkpoint(model):
        from attnsurgeon.ultralytics_bridge.checkpoints import load_checkpoint

        ckpt = load_checkpoint(model)
        return Source("checkpoint", ckpt.path, ckpt.path.stem, ckpt.graph, checkpoint=ckpt)
    doc = load_checked(model)  # with its plugin files; a forked file stops here
    return Source("yaml", doc.path, doc.stem, doc.graph, doc=doc)


def load_checked(model: str | Path, scale: str | None = None) -> model_doc.ModelDoc:
    """Load a model YAML for any command, with the plugin files it lists; a file that needs adoption stops here
    with a one-line error."""
    doc = recorded.with_recorded(model_doc.load(model))
    refuse_blocking(doc, findings(doc, scale, compare=False))
    return doc


def adopt_command(path: Path) -> str:
    return f"attnsurgeon adopt {path}"


def build_scale(doc: model_doc.ModelDoc, scale: str | None = None) -> str:
    """The scale a command builds at: the one asked for, else the name's letter, else the first (Ultralytics' rule)."""
    return builds_at(doc.scales, doc.scale, scale)


def findings(doc: model_doc.ModelDoc, scale: str | None = None, compare: bool = True) -> list[diagnose.Finding]:
    """Every diagnosis of a loaded file; ``compare`` also compares it with the packaged models (stale references)."""
    references = (
        model_doc.packaged_graphs() if compare and not doc.packaged else ()
    )  # a packaged file derives from none
    return diagnose.diagnose(
        doc.graph,
        doc.plain(),
        doc.stem,
        build_scale(doc, scale),
        text_writer.index_comments(doc),  # a flow-style file's from its row lines
        references,
        adopt_command(doc.path),
    )


def refuse_blocking(doc: model_doc.ModelDoc, found: list[diagnose.Finding]) -> None:
    blocking = [f for f in found if f.blocking]
    if blocking:
        more = f" ({len(blocking) - 1} more row(s) too)" if len(blocking) > 1 else ""
        raise NeedsAdoptionError(f"{doc.path}: {blocking[0].message}{more}")


def diagnosis(doc: model_doc.ModelDoc, scale: str) -> list[str]:
    """What ``show`` prints about a file (one line each); a file that needs adoption raises instead."""
    found = findings(doc, scale)
    refuse_blocking(doc, found)
    repo = yolo_repos.unbuildable(doc.graph, doc.plain())
    return [yolo_repos.message(doc.path.name, repo)] * bool(repo) + [f.message for f in found]


def unknown_line(doc: model_doc.ModelDoc) -> str:
    """One line naming the row modules that neither Ultralytics, attnsurgeon nor a plugin the file lists defines, with
    ``adopt`` (which maps a fork block such as ``C3k2_EMA`` to an Augment row); "" when every module is defined."""
    names = [n for n in plugins.unknown_modules(plugins.row_modules(doc.plain())) if n not in yolo_repos.REPO_MODULES]
    if not names:
        return ""
    blocks = [n for n in names if fork_blocks.split_name(n, REGISTRY.find) is not None]
    others = [n for n in names if n not in blocks]
    maps = f" (it maps {', '.join(blocks)} to Augment rows: the block with its attention inside)" * bool(blocks)
    plugin = f", or list the plugin file defining {', '.join(others)} under '{plugins.YAML_KEY}:'" * bool(others)
    return (
        f"{doc.path}: {', '.join(names)}: defined by neither Ultralytics nor attnsurgeon's catalog; run "
        f"`{adopt_command(doc.path)}`{maps}{plugin}"
    )


def refuse_placed(graph: Graph, data: dict[str, Any], stem: str, rows: list[int], scale: str | None = None) -> None:
    """Refuse new rows (an insert, a replace) whose args cannot be what their module means where they land, at
    ``scale`` or the one the file name asks for (``data``: the model's YAML dict, for its scales and channels)."""
    scale = builds_at(scale_names(data), model_doc.guess_scale(stem), scale)
    written, scaled = diagnose.channel_views(graph, data, scale)
    for i, problem in diagnose.arg_problems(graph, written, scaled):
        if i in rows:
            spec, values = diagnose.catalog_row(graph.rows[i])  # type: ignore[misc]
            at = f" at scale {scale}" if scale else ""
            raise ModuleArgsError(
                f"{spec.name} {format_flow(values)} as layer {i}: {problem.text}{at}; signature {spec.signature()}"
            )


def refuse_new_rows(source: Source, edit: Any, probe: bool) -> list[str]:
    """Before a pipeline builds anything: a plugin module that breaks the contract (one line naming it), and new rows
    whose args cannot be what their module means where they land (:func:`refuse_placed`); returns the probe's
    warnings."""
    warnings = sources.refuse(edit.spec, edit.args or (), probe=probe)
    if probe and source.doc is not None:  # a YOLOv5/v7/v9-repository file: one line before anything is built
        yolo_repos.buildable(source.doc)
    ckpt = source.checkpoint
    data, scale = (source.doc.plain(), None) if source.doc is not None else (ckpt.cfg, ckpt.scale)
    refuse_placed(edit.result.graph, data, source.stem, edit.result.fresh_layers, scale)
    return warnings
