"""Shell completion of what a user types: module names and aliases, models, named positions and indices, scales.

Each function is an ``autocompletion=`` callback of a Typer parameter; it runs when the shell asks (TAB), reads only
the catalog registry and YAML text, and never imports torch. Names are case-insensitive to attnsurgeon but the
shell keeps only candidates that begin with exactly what was typed, so a candidate keeps the user's own prefix
(``halo`` completes to ``haloAttention``, which resolves like ``HaloAttention``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import typer

Candidates = list[tuple[str, str]]  # (value, help shown by zsh and fish)
MODEL_SUFFIXES = (".yaml", ".yml", ".pt")
SCALE_HELP = {"n": "nano", "s": "small", "m": "medium", "l": "large", "x": "extra large"}


def _keep_prefix(typed: str, value: str) -> str | None:
    """``value`` completed from what was typed, case-insensitively; None when it does not begin with it."""
    return typed + value[len(typed) :] if value.lower().startswith(typed.lower()) else None


def _matching(typed: str, candidates: Candidates) -> Candidates:
    out = []
    for value, help_text in candidates:
        completed = _keep_prefix(typed, value)
        if completed is not None:
            out.append((completed, help_text))
    return out


def modules(incomplete: str) -> Candidates:
    """Catalog names; their aliases too once something is typed (there are many)."""
    from attnsurgeon.catalog import REGISTRY

    candidates = []
    for spec in REGISTRY.specs():
        candidates.append((spec.name, f"{spec.category}, {spec.venue} {spec.year}"))
        if incomplete:
            candidates.extend((alias, f"alias of {spec.name}") for alias in spec.aliases)
    return _matching(incomplete, candidates)


def _packaged_names() -> Candidates:
    from attnsurgeon.core.yamlfile.model_doc import SCALES, packaged_models_dir

    folder = packaged_models_dir()
    if folder is None:
        return []
    names = []
    for path in sorted(folder.rglob("*.yaml")):
        match = re.fullmatch(r"(.*?\d+)(-.*)?", path.stem)
        has_scales = match is not None and re.search(r"^scales:", path.read_text(encoding="utf-8"), re.M)
        if has_scales and match is not None:
            head, tail = match.group(1), match.group(2) or ""
            names.extend((f"{head}{letter}{tail}.yaml", f"packaged, scale {letter}") for letter in SCALES)
        else:
            names.append((path.name, "packaged"))
    return names


def _local_files(incomplete: str) -> Candidates:
    folder, _, stem = incomplete.rpartition(os.sep)
    where = Path(folder or ".").expanduser()
    try:
        entries = sorted(where.iterdir())
    except OSError:
        return []
    prefix = f"{folder}{os.sep}" if folder else ""
    out = []
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
            continue
        if entry.is_dir():
            out.append((f"{prefix}{entry.name}{os.sep}", "folder"))
        elif entry.suffix.lower() in MODEL_SUFFIXES:
            out.append((f"{prefix}{entry.name}", "checkpoint" if entry.suffix == ".pt" else "model YAML"))
    return out


def models(incomplete: str) -> Candidates:
    """Model YAMLs and .pt checkpoints under the typed folder, and Ultralytics' packaged names."""
    local = _local_files(incomplete)
    packaged = [] if os.sep in incomplete else [c for c in _packaged_names() if c[0].startswith(incomplete)]
    return local + packaged


def _position_names() -> tuple[str, ...]:
    try:  # named positions are optional: the module may not exist in this version
        from attnsurgeon.core import positions
    except ImportError:
        return ()
    return tuple(getattr(positions, "POSITION_NAMES", ()))


def _rows(model: Any) -> list[Any]:
    if not model:
        return []
    try:
        from attnsurgeon.core.yamlfile import model_doc

        return list(model_doc.load(str(model)).graph.rows)
    except Exception:  # completion must never fail: a model that does not load just gives no indices
        return []


def _typed_model(ctx: typer.Context) -> str | None:
    """The model on the command line being completed.

    Click leaves every parameter unset when the option being completed still lacks its value (``-a <TAB>``), so the
    words are read from what the shell script passed: ``COMP_WORDS`` (bash), ``_TYPER_COMPLETE_ARGS`` (zsh, fish,
    PowerShell); the first one that names a model file is taken.
    """
    if ctx.params.get("model"):
        return str(ctx.params["model"])
    words = (os.environ.get("COMP_WORDS") or os.environ.get("_TYPER_COMPLETE_ARGS") or "").split()
    return next((w for w in words if w.lower().endswith(MODEL_SUFFIXES[:2])), None)


def positions(ctx: typer.Context, incomplete: str) -> Candidates:
    """Named positions (``every:MODULE`` spelled out for the model's modules) and the model's layer indices."""
    rows = _rows(_typed_model(ctx))
    modules_in_model = list(dict.fromkeys(row.module for row in rows))
    candidates: Candidates = []
    for name in _position_names():
        if "MODULE" in name:
            candidates.extend((name.replace("MODULE", m), "named position") for m in modules_in_model)
        else:
            candidates.append((name, "named position"))
    candidates.extend((str(i), f"{row.module} ({row.section})") for i, row in enumerate(rows[:-1]))
    return _matching(incomplete, candidates)


def scales(incomplete: str) -> Candidates:
    return _matching(incomplete, list(SCALE_HELP.items()))


def scales_or_all(incomplete: str) -> Candidates:
    return _matching(incomplete, [*SCALE_HELP.items(), ("all", "every scale the YAML has")])


def rewire(incomplete: str) -> Candidates:
    return _matching(
        incomplete, [("all", "every later reader of layer K reads the attention"), ("next", "only the next layer")]
    )


def categories(incomplete: str) -> Candidates:
    from attnsurgeon.catalog import CATEGORIES

    return _matching(incomplete, [(c, "category") for c in CATEGORIES])


def checks(incomplete: str) -> Candidates:
    """--checks: the names after the last comma, with what was typed before it kept."""
    from attnsurgeon.checks.opt_in import ALL, EXPORT_FORMATS, EXTRA_CHECKS

    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    names = (*EXTRA_CHECKS, ALL, *(f"export:{fmt}" for fmt in EXPORT_FORMATS))
    return [(prefix + name, "") for name in names if name.startswith(last.lower())]


def devices(incomplete: str) -> Candidates:
    return _matching(incomplete, [("cpu", "CPU"), ("cuda", "the first CUDA device"), ("cuda:0", "CUDA device 0")])
