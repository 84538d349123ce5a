"""What a surgery did and proved: the report every editing command returns (torch-free, JSON-ready)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsurgeon.core.graph import INPUT, Graph, SurgeryResult
from attnsurgeon.core.yamlfile.model_doc import to_plain
from attnsurgeon.errors import VerificationError


@dataclass
class Check:
    """One verification step: passed (True), failed (False) or skipped (None), with what it saw."""

    name: str
    ok: bool | None  # None: skipped
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class ModelCost:
    scale: str
    params: int
    gflops: float
    gflops_source: str = "ultralytics"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "params": self.params,
            "gflops": self.gflops,
            "gflops_source": self.gflops_source,
        }


@dataclass
class SurgeryReport:
    """What a surgery did and proved. ``checks`` is empty when verification was skipped."""

    output: Path | None
    source: Path
    module: str
    args: list[Any]
    rewire: str
    inserted: list[dict[str, int]]
    changed: list[dict[str, Any]]
    checks: list[Check] = field(default_factory=list)
    costs: dict[str, tuple[ModelCost, ModelCost]] = field(default_factory=dict)  # scale -> (base, new)
    warnings: list[str] = field(default_factory=list)
    yaml_text: str = ""
    operation: str = "insert"
    removed: list[int] = field(default_factory=list)  # old indices
    replaced: list[int] = field(default_factory=list)  # new indices
    positions: dict[str, list[int]] = field(default_factory=dict)  # named position -> indices it resolved to
    dry_run: bool = False
    diff: str = ""  # dry run: unified diff of what would be written
    layer_map: dict[str, Any] | None = None  # dry run of a checkpoint: old -> new indices, fresh and dropped layers
    augmented: list[dict[str, Any]] = field(default_factory=list)  # augment: index, block, block_args, where
    attention: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)  # scale -> layer -> modules, params
    imported: list[str] = field(default_factory=list)  # plugin and class files this process ran (to build)

    @property
    def verified(self) -> bool:
        """Every check ran and passed: a skipped check is not a passed one."""
        return bool(self.checks) and all(c.ok is True for c in self.checks)

    def raise_if_failed(self) -> None:
        """A :class:`VerificationError` naming the first failed check (and carrying all of them), if one failed."""
        failed = [c for c in self.checks if c.ok is False]
        if failed:
            raise VerificationError(
                f"check '{failed[0].name}' failed: {failed[0].detail}; nothing was written", self.checks
            )

    @property
    def skipped(self) -> list[Check]:
        return [c for c in self.checks if c.ok is None]

    @property
    def base(self) -> dict[str, Any]:
        return next(iter(self.costs.values()))[0].as_dict() if self.costs else {}

    @property
    def new(self) -> dict[str, Any]:
        return next(iter(self.costs.values()))[1].as_dict() if self.costs else {}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operation": self.operation,
            "output": str(self.output) if self.output else None,
            "source": str(self.source),
            "module": self.module,
            "args": self.args,
            "rewire": self.rewire,
            "inserted": self.inserted,
            "changed": self.changed,
            "base": self.base or None,
            "new": self.new or None,
            "checks": [c.as_dict() for c in self.checks],
            "verified": self.verified,
            "skipped": [c.name for c in self.skipped],
            "warnings": self.warnings,
            "imported": self.imported,
        }
        if self.removed:
            out["removed"] = self.removed
        if self.replaced:
            out["replaced"] = self.replaced
        if self.positions:
            out["positions"] = self.positions
        if self.augmented:
            out["augmented"] = self.augmented
            out["attention"] = {s: {str(i): v for i, v in layers.items()} for s, layers in self.attention.items()}
        if self.dry_run:
            out["dry_run"] = True
            out["diff"] = self.diff
            if self.layer_map is not None:
                out["layer_map"] = {
                    k: (list(v.items()) if isinstance(v, dict) else v) for k, v in self.layer_map.items()
                }
        if len(self.costs) > 1:
            out["scales"] = {s: {"base": b.as_dict(), "new": n.as_dict()} for s, (b, n) in self.costs.items()}
        return out


InsertReport = SurgeryReport  # the name of the public API's first release


def changed_rows(old_graph: Graph, result: SurgeryResult) -> list[dict[str, Any]]:
    """The rows whose references the surgery rewrote: old and new ``from``, and what they read now."""
    inverse = {new: old for old, new in result.index_map.items()}
    return [
        {
            "index": new,
            "module": result.graph.rows[new].module,
            "from_old": old_from,
            "from_new": new_from,
            "absolute_old": absolute(old_graph, inverse[new]),
            "absolute_new": absolute(result.graph, new),
        }
        for new, old_from, new_from in result.changed
    ]


def absolute(graph: Graph, index: int) -> list[int | str]:
    """The layers row ``index`` reads, with the input image as ``"input"``."""
    return ["input" if t == INPUT else t for t in graph.absolute(index)]


def augmented_rows(old_graph: Graph, result: SurgeryResult) -> list[dict[str, Any]]:
    """The blocks an augment gave attention: index, block and its args as the input wrote them, where it went."""
    return [
        {
            "index": i,
            "block": old_graph.rows[i].module,
            "block_args": to_plain(list(old_graph.rows[i].args)),
            "where": result.graph.rows[i].args[4],
        }
        for i in result.augmented
    ]


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), old_name, new_name))
