"""adopt's plan: a YAML written for a forked Ultralytics rewritten, in memory, for plain Ultralytics with attnsurgeon.
No torch, but for a fork's own attention class (``C2f_Attention`` with ``--fork``), which is imported to be used as a
module.

Forks edit ``parse_model`` so attention rows carry a channel count (``[-1, 1, CBAM, [1024]]``) or list their
hyper-parameters in the fork's own order (Ultralytics' ``CBAM(c1, kernel_size)``: ``[7]`` is a kernel size there).
:func:`attnsurgeon.ops.loading.load_checked` refuses those rows and :func:`plan` rewrites them: catalog names for the
forks' names, channel counts dropped (attnsurgeon infers input channels), hyper-parameters in the catalog's order.
Rows it cannot map are listed with the closest catalog names. :mod:`attnsurgeon.ops.adopt` verifies and writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.core import yolo_repos
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.core.graph import Graph, Row
from attnsurgeon.core.names import close_names
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.ops import diagnose, fork_blocks, fork_rows
from attnsurgeon.ops.fork_rows import PLUGIN_ROUTE, Change
from attnsurgeon.ops.loading import build_scale, findings
from attnsurgeon.sources import recorded
from attnsurgeon.sources.adapter import is_foreign


def line_endings(doc: model_doc.ModelDoc) -> tuple[str, bool]:
    """('\\r\\n' or '\\n', whether the file ends with a newline): kept when a file is rewritten."""
    return doc.newline, doc.text.endswith("\n")


def with_line_endings(text: str, newline: str, final_newline: bool) -> str:
    return text_writer.with_newline(text if final_newline else text.rstrip("\n"), newline)


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
    rows = _Rows.read(doc, result.scale, known, where, fork)
    for i, row in enumerate(doc.graph.rows):
        _map_row(rows, i, row, result)
    derived = diagnose.derivation(doc.graph, model_doc.packaged_graphs())  # the rows' from are unchanged so far
    if fix_stale:
        _fix_stale(doc, doc.graph, derived, result)
    shown = _renumber_index_comments(doc, derived, result)
    result.changes.sort(key=lambda change: change.layer)  # read top to bottom, as the diff
    _adopted_text(result, shown, scale)
    return result


@dataclass
class _Rows:
    """What mapping each row reads: the file, its channels as written, the rows whose args are not what their module
    means, the fork's source (read once, by the first fork row) and the YOLO repository the file comes from."""

    doc: model_doc.ModelDoc
    known: frozenset[str]
    where: str | None
    source: fork_blocks.ForkSource | None
    written: list[int | None]
    problems: set[int]
    repo: str

    @classmethod
    def read(
        cls, doc: model_doc.ModelDoc, scale: str, known: frozenset[str], where: str | None, fork: Path | None
    ) -> _Rows:
        graph = doc.graph
        written, scaled = diagnose.channel_views(graph, doc.plain(), scale)
        problems = {i for i, _ in diagnose.arg_problems(graph, written, scaled)}
        source = fork_blocks.ForkSource(Path(fork)) if fork is not None else None  # read once, by the first fork row
        repo_rows = yolo_repos.unbuildable(graph, doc.plain())
        repo = yolo_repos.origin(repo_rows)[0] if repo_rows else ""
        return cls(doc, known, where, source, written, problems, repo)


def _map_row(rows: _Rows, i: int, row: Row, result: AdoptPlan) -> None:
    """One row: a change, an unmapped row, or nothing (it already builds as the fork meant)."""
    text = diagnose.row_text(row)
    found = diagnose.catalog_row(row)
    if found is None and row.module in rows.known:  # PSA [c]: polarized self-attention in a fork, YOLOv10's PSA here
        c1 = next(iter(diagnose.input_channels(rows.doc.graph, i, [rows.written])), None)
        clash = fork_rows.name_clash(row.module, row.args, c1, rows.repo, rows.source)
        if clash:
            result.unmapped.append(Unmapped(i, text, clash, [row.module]))
            return
    if found is None:
        _map_unknown(rows, i, row, text, result)
        return
    spec, values = found
    if row.module in (diagnose.IDENTITY_INIT, AUGMENT_MODULE):
        if i in rows.problems:
            result.unmapped.append(Unmapped(i, text, f"a {row.module} row with fork arguments: edit it", []))
        return
    if i not in rows.problems:
        if row.module != spec.name:
            tree_edits.set_row(rows.doc.data, i, spec.name, values)
            new_text = diagnose.row_text(replace(row, module=spec.name))
            notes = fork_rows.default_notes(spec, [a.name for a in spec.args[len(values) :]])
            why = "; ".join([f"{row.module} is the catalog's {spec.name}", *notes])
            result.changes.append(Change(i, text, new_text, why))
        return
    _map_args(rows, i, row, text, spec, values, result)


def _map_unknown(rows: _Rows, i: int, row: Row, text: str, result: AdoptPlan) -> None:
    """A row no catalog entry builds: a repository's own module (kept), a fork block (an Augment row), the fork's own
    attention class, or an unmapped row with the closest catalog names."""
    if row.module in yolo_repos.REPO_MODULES:  # MP, IDetect: the repository's own, kept (report: one line)
        return
    own = row.module in (diagnose.IDENTITY_INIT, AUGMENT_MODULE)  # attnsurgeon's own layers
    block = fork_blocks.split_name(row.module, REGISTRY.find) if row.module not in rows.known else None
    if block is not None:  # C2f_EMA: the block with the attention inside, as an Augment row
        result.changes.append(fork_rows.fork_block_change(rows.doc, i, block, rows.where, rows.source))
        return
    if row.module in rows.known or own or row.module.startswith(("nn.", "torchvision.")):
        return
    # C2f_Attention: the fork's own attention class
    adopted = fork_rows.fork_class_change(rows.doc, i, rows.where, rows.source)
    if isinstance(adopted, Change):
        result.changes.append(adopted)
        return
    closest, embedded = _closest(row.module)
    why = f"{row.module} is neither a catalog module nor an Ultralytics module; " + (
        f"it looks like a block with {' or '.join(closest)} inside: use the plain block and insert "
        f"{closest[0]} after it (attnsurgeon insert), or {PLUGIN_ROUTE}"
        if embedded
        else adopted or PLUGIN_ROUTE
    )
    result.unmapped.append(Unmapped(i, text, why, closest))


def _map_args(rows: _Rows, i: int, row: Row, text: str, spec: ModuleSpec, values: list[Any], result: AdoptPlan) -> None:
    """A catalog row whose args are a fork's: channel counts dropped, hyper-parameters in the catalog's order."""
    own = fork_rows.fork_order(row.module, spec, rows.source)  # with --fork, the fork's constructor decides
    new, why = fork_rows.map_args(spec, values, _channel_counts(rows.doc, rows.doc.graph, i), own)
    if new is None:
        result.unmapped.append(Unmapped(i, text, why, [spec.name]))
        return
    renamed = f"{row.module} is the catalog's {spec.name}; " if row.module != spec.name else ""
    tree_edits.set_row(rows.doc.data, i, spec.name, new)
    new_text = diagnose.row_text(replace(row, module=spec.name, args=tuple(new)))
    result.changes.append(Change(i, text, new_text, renamed + why))


def _renumber_index_comments(
    doc: model_doc.ModelDoc, derived: tuple[str, Graph, dict[int, int]] | None, result: AdoptPlan
) -> dict[int, int]:
    """Index comments that still carry the row's number in the packaged model the file derives from, renumbered to
    their rows; returns them (row -> old number)."""
    old_index = {new: old for old, new in derived[2].items()} if derived else {}
    shown = {}
    for index, old in sorted(tree_edits.index_comments(doc.data).items()):
        if old != index and old_index.get(index) == old:  # the row's number in the packaged model it derives from
            tree_edits.renumber_index_comment(doc.data, index, old)
            shown[index] = old
            why = f"index comment renumbered to its row (it was layer {old} in {derived[0]})"  # type: ignore[index]
            result.changes.append(Change(index, f"# {old}", f"# {index}", why))
    return shown


def _adopted_text(result: AdoptPlan, shown: dict[int, int], scale: str | None) -> None:
    """The adopted file: its plain config, its text (line endings as the input's) and the diagnosis of that text."""
    doc = result.doc
    result.new_cfg = model_doc.to_plain(doc.data)
    text = text_writer.adopted_text(doc, graph_of(result.new_cfg), shown, doc.data)  # a flow-style file: line by line
    result.text = with_line_endings(text, *line_endings(doc))
    adopted = model_doc.ModelDoc(
        model_doc.loads(text), graph_of(result.new_cfg), doc.path, doc.stem, doc.packaged, text
    )
    result.findings = findings(adopted, scale)


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
