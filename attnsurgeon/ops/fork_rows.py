"""The rows ``adopt`` rewrites from a fork's conventions: attention rows with channel counts (:func:`map_args`) and
fork blocks named after their attention (:func:`fork_block_change`; the fork's own class, :func:`fork_class_change`).
No torch, but for a fork's own attention class, which is imported to be used as a module."""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import REGISTRY, ModuleSpec
from attnsurgeon.catalog.argcheck import format_flow
from attnsurgeon.core.augment_graph import AUGMENT_MODULE
from attnsurgeon.core.yamlfile import model_doc, tree_edits
from attnsurgeon.errors import AttnSurgeonError, UsageError
from attnsurgeon.ops import diagnose, fork_blocks
from attnsurgeon.sources.adapter import is_foreign

PLUGIN_ROUTE = "make it a plugin module (`--plugin FILE.py`, or an `attnsurgeon.modules` entry point) so it builds"
MAX_CHANNEL_ARGS = 2  # forks write (c1) or (c1, c2) before the hyper-parameters (CoordAtt, GAM_Attention)


@dataclass
class Change:
    layer: int
    old: str
    new: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "old": self.old, "new": self.new, "why": self.why}


def map_args(
    spec: ModuleSpec, values: list[Any], channels: list[int], fork: tuple[list[str], str] | None = None
) -> tuple[list[Any] | None, str]:
    """The catalog args a fork row means, and why; (None, reason) when they cannot be read. ``fork``: the fork's own
    constructor (its parameter names after the channel count, and where it is defined), which decides the order;
    without it the forks' usual order is assumed, and the reason says so."""
    rest = list(values)
    dropped = []
    while rest and len(dropped) < MAX_CHANNEL_ARGS and rest[0] in channels and not isinstance(rest[0], bool):
        dropped.append(rest.pop(0))
    order = list(spec.fork_args) or [a.name for a in spec.args]
    if fork is not None:
        order = fork[0]
    elif len(rest) > len(order):  # more values than the forks' usual order holds: the catalog's own (cbam_block's)
        order = [a.name for a in spec.args]
    convention = f"{spec.name}(c1, {', '.join(order)})" if order else f"{spec.name}(c1)"
    said = f"the fork's {fork[1]}" if fork is not None else f"the forks' {convention}"
    if len(rest) > len(order):
        if _conv_like(rest):
            return None, (
                f"{spec.name} {format_flow(values)} reads as a conv block's [out channels, kernel, stride] (a strided "
                f"conv with attention, as YOLOv7 forks write it), not an attention layer: write Conv "
                f"{format_flow(rest)} and insert {spec.name} after it (attnsurgeon insert), or {PLUGIN_ROUTE}"
            )
        what = (
            f"after the channel count{'s' * (len(dropped) > 1)} {dropped}" if dropped else "and none is a channel count"
        )
        settle = "" if fork is not None else "; adopt --fork PATH reads the fork's own constructor instead"
        return None, f"{len(rest)} argument(s) {what}, but {said} takes at most {len(order)}{settle}"
    chosen = dict(zip(order, rest, strict=False))
    known = {a.name for a in spec.args}
    new = [chosen.get(a.name, a.default) for a in spec.args]
    why = []
    if dropped:
        why.append(f"channel count {format_flow(dropped)} dropped (attnsurgeon infers input channels)")
    kept = {k: v for k, v in chosen.items() if k in known}
    if kept:
        why.append(f"{', '.join(f'{k}={v!r}' for k, v in kept.items())} kept as in {said}")
    if len(kept) < len(chosen):
        lost = ", ".join(f"{k}={v!r}" for k, v in chosen.items() if k not in known)
        why.append(f"{lost}: no such parameter in the catalog's {spec.signature()}, dropped")
    defaults = [a.name for a in spec.args if a.name not in chosen]
    if defaults:
        why.append(f"default {', '.join(defaults)}")
    return new, "; ".join([*why, *default_notes(spec, defaults)])


def default_notes(spec: ModuleSpec, relied: list[str]) -> list[str]:
    """For each hyper-parameter an adopted row leaves to the catalog's default where forks commonly give another
    (``spec.fork_defaults``): which value the row now gets, and that the fork's may differ."""
    catalog = {a.name: a.default for a in spec.args}
    return [
        f"{name} is now the catalog's default {catalog[name]!r}, where forks commonly use {value!r}: the fork's may "
        f"differ, write it in the row if so"
        for name, value in spec.fork_defaults
        if name in relied and catalog.get(name) != value
    ]


def _conv_like(values: list[Any]) -> bool:
    """``[64, 3, 2]``: out channels, an odd kernel, a stride of 1 or 2 (a conv block's args, not an attention's)."""
    ints = [v for v in values[:3] if isinstance(v, int) and not isinstance(v, bool)]
    return len(values) >= 3 and len(ints) == 3 and ints[0] >= 8 and ints[1] % 2 == 1 and ints[2] in (1, 2)


def fork_order(module: str, spec: ModuleSpec, fork: fork_blocks.ForkSource | None) -> tuple[list[str], str] | None:
    """The fork's own constructor for a row's ``module`` (read with ``ast``, never run): its parameter names after
    the channel count, and the class as written; None without ``--fork`` or such a class."""
    from attnsurgeon.sources import adapter

    if fork is None:
        return None
    found = fork_blocks.find_class(fork, [module, spec.name, *spec.aliases])
    if found is None:
        return None
    node = fork.classes[found[0]][0]
    params = adapter.params_in_tree(node)
    if not params:
        return None
    plain = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [p.name for p in plain[1:]], f"{found[0]}({', '.join(map(str, params))}) in {found[1]}"


def fork_block_change(
    doc: model_doc.ModelDoc,
    i: int,
    block: fork_blocks.ForkBlock,
    where: str | None,
    fork: fork_blocks.ForkSource | None,
    spec: ModuleSpec | None = None,
    defined: str = "",
) -> Change:
    """The Augment row of a fork block: ``block.attention`` a catalog module, or the fork's own class ``spec``
    (``defined``: where the fork defines it, for the report)."""
    row = doc.graph.rows[i]
    spec = spec or REGISTRY.get(block.attention)
    if where is not None and where not in fork_blocks.AUGMENT_WHERE:
        raise UsageError(f"--where {where!r}: a fork block's attention goes in each bottleneck or at the output")
    aliases = tuple(n for n in dict.fromkeys([*spec.aliases, getattr(spec, "foreign_name", "")]) if n)
    values, said = spec.defaults(), f"default {spec.name} args"
    if fork is not None:
        values, said = fork_call_args(row.module, fork, spec, (block.attention, *aliases))
    if where is None and fork is not None:
        where, how = fork_blocks.placement(row.module, block, fork, aliases)
    elif where is None:
        where = fork_blocks.DEFAULT_WHERE
        how = (
            f"assumed --where {where} ({block.attention} in each bottleneck, as most forks do); if the fork applies it "
            f"after the block's last conv, run adopt --where output, or adopt --fork PATH to read it from the fork"
        )
    else:
        how = f"--where {where} as asked"
    new = [block.block, list(row.args), spec.name, values, where]
    tree_edits.set_row(doc.data, i, AUGMENT_MODULE, new)
    new_text = diagnose.row_text(replace(row, module=AUGMENT_MODULE, args=tuple(new)))
    inside = f"the fork's own {block.attention} ({defined}, used as the module {spec.name})" if defined else spec.name
    notes = default_notes(spec, [a.name for a in spec.args]) if said.startswith("default") else []
    why = "; ".join([f"{row.module} is {block.block} with {inside} inside: {how}", said, *notes])
    return Change(i, diagnose.row_text(row), new_text, why)


def fork_call_args(
    module: str, fork: fork_blocks.ForkSource, spec: ModuleSpec, names: tuple[str, ...]
) -> tuple[list[Any], str]:
    """The attention's args as the fork's class builds it (``Attention(c2, 4)``: ``[4]``), and what the report says;
    the module's defaults where the fork's call is not made of literals."""
    from attnsurgeon.sources import adapter  # the adapters' binding rules, only where a fork is read

    call = fork_blocks.attention_call(module, fork, names)
    if call is None:
        return spec.defaults(), f"default {spec.name} args"
    channel_names = {getattr(spec, "channel_arg", ""), *getattr(spec, "same_as_input", ())} - {""}
    read = fork_blocks.call_values(call, channel_names or set(adapter.CHANNEL_NAMES + adapter.SAME_AS_INPUT))
    if isinstance(read, str):
        return spec.defaults(), f"default {spec.name} args ({read}: check them)"
    positional, keywords = read
    if not positional and not keywords:
        return spec.defaults(), f"default {spec.name} args, as the fork builds it ({ast.unparse(call)})"
    if is_foreign(spec):
        values: list[Any] = [*positional, *([dict(keywords)] if keywords else [])]
        problem = adapter.binding_problem(spec, values)  # type: ignore[arg-type]
    else:
        mapped, why = map_args(spec, positional, [])
        unknown = sorted(set(keywords) - {a.name for a in spec.args})
        problem = why if mapped is None else f"{spec.name} takes no {', '.join(unknown)}" if unknown else ""
        values = [keywords.get(a.name, v) for a, v in zip(spec.args, mapped or [], strict=False)]
    if problem:
        return spec.defaults(), f"default {spec.name} args (the fork's {ast.unparse(call)}: {problem})"
    return values, f"{spec.name} args {format_flow(values)} as the fork builds it ({ast.unparse(call)})"


def fork_class_change(
    doc: model_doc.ModelDoc, i: int, where: str | None, fork: fork_blocks.ForkSource | None
) -> Change | str:
    """``C2f_Attention`` where the fork's source (``--fork``) defines ``Attention``: an Augment row with that class as
    a foreign module (``FILE.py:Attention``, imported to build it, recorded under ``attnsurgeon_plugins``); else what
    to do, in words (no --fork, no such class, a file that does not import on its own)."""
    module = doc.graph.rows[i].module
    named = fork_blocks.named_block(module)
    if named is None:
        return ""
    block, candidates = named
    if fork is None:
        return (
            f"it looks like {block} with the fork's own {candidates[0]} inside: adopt --fork PATH (the fork's Python "
            f"source) uses that class as the module, or {PLUGIN_ROUTE}"
        )
    found = fork_blocks.fork_class_name(module, fork)
    if isinstance(found, str):
        return f"it looks like {block} with the fork's own {candidates[0]} inside, but {found}"
    if found is None:
        name = candidates[0]
        return f"it looks like {block} with {name} inside, but --fork {fork.path} defines no class {name}"
    fork_block, file = found
    source = f"{file}:{fork_block.attention}"
    try:
        spec = sources.add(source)[0]  # read from its syntax tree: imported only when verification builds it
    except AttnSurgeonError as exc:
        return f"it is {block} with the fork's own {fork_block.attention} inside, but {_why(exc, source)}"
    return fork_block_change(doc, i, fork_block, where, fork, spec, source)


def _why(exc: Exception, source: str) -> str:
    """An error of a fork's class, with the fix adopt takes (it has --plugin, not --channel-arg)."""
    from attnsurgeon.sources.adapter import NAME_IT
    from attnsurgeon.sources.file_import import IMPORT_FAILED

    why = str(exc).replace(NAME_IT, f"name it: adopt --plugin {source}?channel=NAME")
    name = source.rpartition(":")[2]
    fix = f"put the class in a file that imports on its own and run adopt with --plugin FILE.py:{name}"
    return why + (f"; {fix}" if IMPORT_FAILED in why else "")


def unusable(plan: Any, spec: ModuleSpec, exc: AttnSurgeonError) -> AttnSurgeonError:
    """The error of a plain class an adopted row builds, found when verification imports it: for a fork's own class
    whose file does not import, the row it came from in one line (as adopt names a row it cannot map)."""
    from attnsurgeon.errors import NeedsAdoptionError
    from attnsurgeon.sources.file_import import IMPORT_FAILED

    rows = plan.doc.graph.rows if not plan.new_cfg else [*plan.new_cfg["backbone"], *plan.new_cfg["head"]]
    used = [c for c in plan.changes if rows[c.layer][2] == AUGMENT_MODULE and rows[c.layer][3][2] == spec.name]
    if not used or IMPORT_FAILED not in str(exc):
        return exc
    change, source = used[0], getattr(spec, "origin", spec.name)
    block = rows[change.layer][3][0]
    why = f"it is {block} with the fork's own {spec.name} inside, but {_why(exc, source)}"
    return NeedsAdoptionError(
        f"{plan.doc.path}: layer {change.layer} {change.old} cannot be adopted: {why}; nothing was written"
    )


def name_clash(
    module: str, args: tuple[Any, ...], c1: int | None, repo: str, fork: fork_blocks.ForkSource | None
) -> str:
    """Why a row named like an Ultralytics module means another module of that name (a fork's own), or "" when it
    is Ultralytics' as parse_model calls it. ``c1``: its input channels as written; ``repo``: the repository a
    YOLOv5/v7/v9 file comes from ("" for none); ``fork``: the fork's source, whose class of that name decides."""
    from attnsurgeon.core import yolo_repos
    from attnsurgeon.sources import adapter, ultralytics_classes

    cls = ultralytics_classes.find(module)
    if cls is None or not cls.base:
        return ""
    problem = ultralytics_classes.misfit(cls, args, c1)
    verb = "does not fit" if problem else "is not"
    own = cls.equal and repo == yolo_repos.YOLOV5[0] and module not in yolo_repos.YOLOV5_OWN
    if not problem and own:
        problem = f"the {repo} repository has no {module}, so this {repo}-repository file names a fork's own {module}"
    ours = f"Ultralytics' {cls.signature()} ({cls.file}), which parse_model calls as {cls.call(args)}"
    found = fork.classes.get(module) if fork is not None else None
    if found is not None:
        params = adapter.params_in_tree(found[0])
        theirs = f"{module}({', '.join(map(str, params))})" if params is not None else f"{module}(...)"
        same = params is not None and [p.name for p in params] == [p.name for p in cls.params]
        if same and not problem:
            return ""
        return (
            f"{module} is two modules: the fork's {theirs} ({found[1]}) and {ours}"
            + (f" ({problem})" if problem else "")
            + f"; rename the fork's class and its rows, then {PLUGIN_ROUTE}"
        )
    if not problem:
        return ""
    return (
        f"{module} [{format_flow(list(args))[1:-1]}] {verb} {ours}: {problem}; a fork's {module} of the same "
        f"name is another module (adopt --fork PATH reads its constructor): rename it in the fork and its rows, "
        f"then {PLUGIN_ROUTE}"
    )
