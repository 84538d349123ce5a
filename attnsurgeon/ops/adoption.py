"""Adopting a YAML written for a forked Ultralytics: the plan, and the check every command runs on load. No torch,
but for a fork's own attention class (``C2f_Attention`` with ``--fork``), which is imported to be used as a module.

Forks edit ``parse_model`` so attention rows carry a channel count (``[-1, 1, CBAM, [1024]]``) or list their
hyper-parameters in the fork's own order (Ultralytics' ``CBAM(c1, kernel_size)``: ``[7]`` is a kernel size there).
Plain Ultralytics with attnsurgeon would build those rows as different modules, so :func:`load_checked` refuses them
and :func:`plan` rewrites them: catalog names for the forks' names, channel counts dropped (attnsurgeon infers input
channels), hyper-parameters in the catalog's order. Rows it cannot map are listed with the closest catalog names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.catalog.argcheck import format_flow
from attnsurgeon.core import yolo_repos
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.core.graph import Graph
from attnsurgeon.core.names import close_names
from attnsurgeon.core.scales import builds_at, scale_names
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import ModuleArgsError, NeedsAdoptionError
from attnsurgeon.ops import diagnose, fork_blocks, fork_rows
from attnsurgeon.ops.fork_rows import PLUGIN_ROUTE, Change
from attnsurgeon.sources import plugins, recorded
from attnsurgeon.sources.adapter import is_foreign


def adopt_command(path: Path) -> str:
    return f"attnsurgeon adopt {path}"


def line_endings(doc: model_doc.ModelDoc) -> tuple[str, bool]:
    """('\\r\\n' or '\\n', whether the file ends with a newline): kept when a file is rewritten."""
    return doc.newline, doc.text.endswith("\n")


def with_line_endings(text: str, newline: str, final_newline: bool) -> str:
    return text_writer.with_newline(text if final_newline else text.rstrip("\n"), newline)


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


def refuse_new_rows(source: Any, edit: Any, probe: bool) -> list[str]:
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


def check_loaded(doc: model_doc.ModelDoc, scale: str | None = None) -> model_doc.ModelDoc:
    """A loaded model YAML, if no command should refuse it; a file that needs adoption stops here (one line)."""
    refuse_blocking(doc, findings(doc, scale, compare=False))
    return doc


def load_checked(model: str | Path, scale: str | None = None) -> model_doc.ModelDoc:
    """Load a model YAML for any command, with the plugin files it lists; a file that needs adoption stops here
    with a one-line error."""
    return check_loaded(recorded.with_recorded(model_doc.load(model)), scale)


# --------------------------------------------------------------------------------------------------------------------
# The plan


@dataclass
class Unmapped:
    layer: int
    row: str
    why: str
    closest: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "row": self.row, "why": self.why, "closest": self.closest}


@dataclass
class AdoptPlan:
    doc: model_doc.ModelDoc
    scale: str
    changes: list[Change] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    findings: list[diagnose.Finding] = field(default_factory=list)  # of the adopted file
    text: str = ""  # the adopted YAML, line endings as the input's
    new_cfg: dict[str, Any] = field(default_factory=dict)

    @property
    def attention_layers(self) -> list[int]:
        """Catalog layers whose output reaches the head (a dead one is a diagnosis, not a failed gradient check)."""
        graph = graph_of(self.new_cfg) if self.new_cfg else self.doc.graph  # adopted rows: an Augment row's module
        last = len(graph) - 1
        return [
            i for i, row in enumerate(graph.rows) if diagnose.catalog_row(row) is not None and graph.reaches(i, last)
        ]


def _channel_counts(doc: model_doc.ModelDoc, graph: Graph, index: int) -> list[int]:
    """The input channels of row ``index`` as written and at every scale of the file."""
    scales = doc.scales or [""]
    views = [diagnose.channel_views(graph, doc.plain(), s)[j] for s in scales for j in (0, 1)]
    return diagnose.input_channels(graph, index, views)


def _closest(name: str) -> tuple[list[str], bool]:
    """Catalog names close to an unknown module name, and whether the name embeds one (``C2f_CBAM``)."""
    tokens = [t for t in re.split(r"[_\-]", name) if t]
    embedded = [spec.name for t in tokens if (spec := REGISTRY.find(t)) is not None]
    if embedded:
        return list(dict.fromkeys(embedded)), True
    index = {n.lower(): s.name for s in REGISTRY.specs() for n in (s.name, *s.aliases)}
    named = fork_blocks.named_block(name)  # C2f_TripleAttention: a slip in the attention's part of a block's name
    queries = [name, *(named[1] if named is not None else ()), *(t for t in tokens if len(t) >= 4)]
    found = [index[key] for query in queries for key in close_names(query.lower(), list(index))]
    return list(dict.fromkeys(found))[:3], False


def _fix_stale(
    doc: model_doc.ModelDoc, graph: Graph, derived: tuple[str, Graph, dict[int, int]] | None, result: AdoptPlan
) -> None:
    """Point each stale reference at the layer it meant: the packaged model's input, renumbered here. Rows the file
    added after that layer stay read by what reads them already (as ``insert --rewire next`` splices a row)."""
    by_row: dict[int, list[diagnose.StaleRef]] = {}
    for stale in diagnose.stale_refs(graph, derived):
        by_row.setdefault(stale.layer, []).append(stale)
    for layer, found in sorted(by_row.items()):
        row = graph.rows[layer]
        refs = row.refs()
        for s in found:
            refs[s.slot] = s.meant - layer if refs[s.slot] < 0 else s.meant  # a relative reference stays relative
        new_from: int | list[int] = refs if isinstance(row.from_, (list, tuple)) else refs[0]
        tree_edits.set_from(doc.data, layer, new_from)
        new_text = diagnose.row_text(replace(row, from_=new_from))
        why = "; ".join(
            f"read layer {s.target} ({graph.rows[s.target].module}); in {s.model} this input is layer {s.packaged} "
            f"({graph.rows[s.meant].module}), layer {s.meant} here"
            + (
                f" (the {graph.rows[s.after].module} added after it stays on its own path)"
                if s.after != s.meant
                else ""
            )
            for s in found
        )
        result.changes.append(Change(layer, diagnose.row_text(row), new_text, why))


def plan(
    model: str | Path,
    scale: str | None = None,
    known: frozenset[str] = frozenset(),
    fix_stale: bool = False,
    where: str | None = None,
    fork: Path | None = None,
) -> AdoptPlan:
    """Rewrite a forked-Ultralytics YAML for plain Ultralytics with attnsurgeon (in memory). ``known`` holds the module
    names plain Ultralytics resolves (``attnsurgeon.catalog.name_rules.ultralytics_names``); ``fix_stale`` also points
    stale references (a renumbering that missed a row) at the layers they meant (:func:`_fix_stale`)."""
    doc = recorded.with_recorded(model_doc.load(model))
    result = AdoptPlan(doc, build_scale(doc, scale))
    graph = doc.graph
    written, scaled = diagnose.channel_views(graph, doc.plain(), result.scale)
    problems = {i for i, _ in diagnose.arg_problems(graph, written, scaled)}
    source = fork_blocks.ForkSource(Path(fork)) if fork is not None else None  # read once, by the first fork row
    repo_rows = yolo_repos.unbuildable(graph, doc.plain())
    repo = yolo_repos.origin(repo_rows)[0] if repo_rows else ""
    for i, row in enumerate(graph.rows):
        text = diagnose.row_text(row)
        found = diagnose.catalog_row(row)
        if found is None and row.module in known:  # PSA [c]: polarized self-attention in a fork, YOLOv10's PSA here
            c1 = next(iter(diagnose.input_channels(graph, i, [written])), None)
            clash = fork_rows.name_clash(row.module, row.args, c1, repo, source)
            if clash:
                result.unmapped.append(Unmapped(i, text, clash, [row.module]))
                continue
        if found is None:
            if row.module in yolo_repos.REPO_MODULES:  # MP, IDetect: the repository's own, kept (report: one line)
                continue
            own = row.module in (diagnose.IDENTITY_INIT, AUGMENT_MODULE)  # attnsurgeon's own layers
            block = fork_blocks.split_name(row.module, REGISTRY.find) if row.module not in known else None
            if block is not None:  # C2f_EMA: the block with the attention inside, as an Augment row
                result.changes.append(fork_rows.fork_block_change(doc, i, block, where, source))
                continue
            if row.module not in known and not own and not row.module.startswith(("nn.", "torchvision.")):
                # C2f_Attention: the fork's own attention class
                adopted = fork_rows.fork_class_change(doc, i, where, source)
                if isinstance(adopted, Change):
                    result.changes.append(adopted)
                    continue
                closest, embedded = _closest(row.module)
                why = f"{row.module} is neither a catalog module nor an Ultralytics module; " + (
                    f"it looks like a block with {' or '.join(closest)} inside: use the plain block and insert "
                    f"{closest[0]} after it (attnsurgeon insert), or {PLUGIN_ROUTE}"
                    if embedded
                    else adopted or PLUGIN_ROUTE
                )
                result.unmapped.append(Unmapped(i, text, why, closest))
            continue
        spec, values = found
        if row.module in (diagnose.IDENTITY_INIT, AUGMENT_MODULE):
            if i in problems:
                result.unmapped.append(Unmapped(i, text, f"a {row.module} row with fork arguments: edit it", []))
            continue
        if i not in problems:
            if row.module != spec.name:
                tree_edits.set_row(doc.data, i, spec.name, values)
                new_text = diagnose.row_text(replace(row, module=spec.name))
                notes = fork_rows.default_notes(spec, [a.name for a in spec.args[len(values) :]])
                why = "; ".join([f"{row.module} is the catalog's {spec.name}", *notes])
                result.changes.append(Change(i, text, new_text, why))
            continue
        own = fork_rows.fork_order(row.module, spec, source)  # with --fork, the fork's constructor decides
        new, why = fork_rows.map_args(spec, values, _channel_counts(doc, graph, i), own)
        if new is None:
            result.unmapped.append(Unmapped(i, text, why, [spec.name]))
            continue
        renamed = f"{row.module} is the catalog's {spec.name}; " if row.module != spec.name else ""
        tree_edits.set_row(doc.data, i, spec.name, new)
        new_text = diagnose.row_text(replace(row, module=spec.name, args=tuple(new)))
        result.changes.append(Change(i, text, new_text, renamed + why))
    derived = diagnose.derivation(graph, model_doc.packaged_graphs())  # the rows' from are unchanged so far
    if fix_stale:
        _fix_stale(doc, graph, derived, result)
    old_index = {new: old for old, new in derived[2].items()} if derived else {}
    shown = {}
    for index, old in sorted(tree_edits.index_comments(doc.data).items()):
        if old != index and old_index.get(index) == old:  # the row's number in the packaged model it derives from
            tree_edits.renumber_index_comment(doc.data, index, old)
            shown[index] = old
            why = f"index comment renumbered to its row (it was layer {old} in {derived[0]})"  # type: ignore[index]
            result.changes.append(Change(index, f"# {old}", f"# {index}", why))
    result.changes.sort(key=lambda change: change.layer)  # read top to bottom, as the diff
    result.new_cfg = model_doc.to_plain(doc.data)
    text = text_writer.adopted_text(doc, graph_of(result.new_cfg), shown, doc.data)  # a flow-style file: line by line
    result.text = with_line_endings(text, *line_endings(doc))
    adopted = model_doc.ModelDoc(
        model_doc.loads(text), graph_of(result.new_cfg), doc.path, doc.stem, doc.packaged, text
    )
    result.findings = findings(adopted, scale)
    return result


def foreign_rows(result: AdoptPlan) -> list[tuple[ModuleSpec, list[Any]]]:
    """The plain classes (``FILE.py:Class``) the adopted rows build, with their args, once each."""
    rows = [diagnose.catalog_row(row) for row in graph_of(result.new_cfg).rows] if result.new_cfg else []
    found = [(spec, values) for spec, values in filter(None, rows) if is_foreign(spec)]
    return list({(spec.name, repr(values)): (spec, values) for spec, values in found}.values())


def graph_of(cfg: dict[str, Any]) -> Graph:
    return Graph.from_sections(cfg["backbone"], cfg["head"])


@dataclass
class AdoptReport:
    """What ``adopt`` changed, could not map, diagnosed and proved; ``checks`` is empty without verification."""

    source: Path
    output: Path | None
    scale: str
    changes: list[Change]
    unmapped: list[Unmapped]
    findings: list[diagnose.Finding]
    yaml_text: str
    diff: str
    checks: list[Any] = field(default_factory=list)
    params: dict[int, int] = field(default_factory=dict)  # attention layer -> parameters at ``scale``
    warnings: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)  # plugin and fork files whose code ran (verification)
    repository: str = ""  # "YOLOv7" for a file only that repository builds (adopted with --no-verify)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "output": str(self.output) if self.output else None,
            "scale": self.scale or None,
            "changes": [c.as_dict() for c in self.changes],
            "unmapped": [u.as_dict() for u in self.unmapped],
            "findings": [f.as_dict() for f in self.findings],
            "checks": [c.as_dict() for c in self.checks],
            "params": {str(k): v for k, v in self.params.items()},
            "warnings": self.warnings,
            "imported": self.imported,
            "repository": self.repository or None,
        }


def default_output(doc: model_doc.ModelDoc) -> Path:
    name = f"{doc.stem}-adopted.yaml"
    return Path(name) if doc.packaged else doc.path.parent / name
