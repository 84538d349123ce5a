"""Fork blocks named after their attention (``C2f_EMA``, ``C3k2_CBAM``, ``C3_SE``) as attnsurgeon ``Augment`` rows.

Where the fork puts the attention is read, when its source is given, from the class definitions without running
them (``ast``). ``__init__`` says which attributes hold the attention (``self.att = EMA(c2)``, ``nn.Sequential(...,
EMA(c2))``, a ``ModuleList`` of them) and which hold the block's bottlenecks (``self.m = nn.ModuleList(Bottleneck_EMA(
...) for _ in range(n))``); ``forward`` says where the attention is applied:

- to the block's last conv (``return self.att(self.cv2(...))``, ``y = self.cv2(...); return self.att(y)``, or the
  base block's whole output, ``self.att(super().forward(x))``): ``output``, as :data:`OUTPUT_CONV` builds it;
- in each bottleneck, to the result of its last conv before the residual addition (``x + self.att(self.cv2(
  self.cv1(x)))``), or by the block to each bottleneck's output: ``bottleneck``, as Augment builds it (the two are
  the same where the bottleneck has no shortcut; the report says so);
- anywhere else (the block's input, one chunk, after the addition) or nowhere: refused, naming where.

The attention is a catalog module (``C2f_EMA``, :func:`split_name`) or a class the fork defines
(``C2f_Attention``, :func:`fork_class_name`); :func:`attention_call` finds the call building it, whose literal args
:func:`call_values` reads (``Attention(c2, 4)``: ``[4]``).

No torch, no printing.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsurgeon.core.augment_graph import AUGMENT_WHERE, AUGMENTABLE_BLOCKS, OUTPUT_CONV
from attnsurgeon.errors import ModuleArgsError, UsageError
from attnsurgeon.ops import fork_imports

__all__ = [
    "AUGMENT_WHERE", "DEFAULT_WHERE", "ForkBlock", "ForkSource", "attention_call", "call_values", "find_class",
    "fork_class_name", "placement", "split_name",
]  # fmt: skip
DEFAULT_WHERE = "bottleneck"  # the most common published fork: Bottleneck_EMA inside C2f_EMA
UNIT_LAST_CONV = "cv2"  # Ultralytics' Bottleneck: x + cv2(cv1(x)); the conv before the residual addition
PLACEMENTS = "attnsurgeon's placements are output (after the last conv) and bottleneck (in each bottleneck's branch)"
MAX_DEPTH = 3  # C3k2_EMA -> C3k_EMA -> Bottleneck_EMA
UNITS = {"m"}  # the attribute holding the bottlenecks in every Ultralytics block (C2f, C3, C3k2, ...)


@dataclass(frozen=True)
class ForkBlock:
    block: str  # the Ultralytics block: C2f
    attention: str  # the attention module: EMA (a catalog name) or a class of the fork (Attention)


def split_name(module: str, find: object) -> ForkBlock | None:
    """``C2f_EMA`` -> (C2f, EMA) when the first part is an augmentable block and a later part a catalog module
    (``find``: name -> spec or None, e.g. ``REGISTRY.find``)."""
    named = named_block(module)
    for part in named[1] if named is not None else ():
        spec = find(part)  # type: ignore[operator]
        if spec is not None:
            return ForkBlock(named[0], spec.name)  # type: ignore[index]
    return None


def named_block(module: str) -> tuple[str, list[str]] | None:
    """``C2f_MyAttn_v2`` -> (C2f, [MyAttn_v2, MyAttn, v2]): an augmentable block first, then what may name the
    attention (the whole rest first, as a class name may hold an underscore); None where no block starts the name."""
    parts = [p for p in re.split(r"[_\-]", module) if p]
    if len(parts) < 2 or parts[0] not in AUGMENTABLE_BLOCKS:
        return None
    rest = module[len(parts[0]) :].lstrip("_-")
    return parts[0], list(dict.fromkeys([rest, *parts[1:]]))


def fork_class_name(module: str, source: ForkSource) -> tuple[ForkBlock, Path] | str | None:
    """``C2f_Attention`` -> ((C2f, Attention), the file defining the one the block uses) when the rest of the name is
    a class the fork's ``source`` defines (its own attention: not a catalog module, which :func:`split_name` finds);
    why not, in words, when the fork defines it in several files and the block's imports do not say which."""
    named = named_block(module)
    found = find_class(source, named[1]) if named is not None else None
    if named is None or found is None:
        return None
    block = source.classes.get(module)
    files = fork_imports.used_definition(found[0], block[1] if block else None, source.defined[found[0]], source.trees)
    if len(files) > 1:
        user = f"{block[1]}'s imports do not say which {module} uses" if block else f"the fork defines no {module}"
        fix = f"name the one it uses: adopt --plugin FILE.py:{found[0]}"
        return f"the fork defines {found[0]} in {' and '.join(map(str, files))}, and {user}; {fix}"
    return ForkBlock(named[0], found[0]), files[0]


def _sources(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():  # regular files only: a folder named x.py is no source, and reading a FIFO would never end
        files = sorted(p for p in path.rglob("*.py") if p.is_file())
        if not files:
            raise UsageError(f"--fork {path}: a folder with no .py files; give the fork's Python source folder")
        return files
    what = "not a regular file or folder" if path.exists() else "no such file or folder"
    raise UsageError(f"--fork {path}: {what}; give the fork's Python source folder or a .py file")


def _parse(file: Path, given: Path) -> ast.Module | str:
    """``file``'s syntax tree, or why it is not Python source; a file that cannot be read is a one-line error."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise UsageError(f"--fork {given}: cannot read {file} ({why}); give a fork it can read") from None
    if b"\0" in raw:
        return "has NUL bytes: a binary file, not Python source"
    try:
        return ast.parse(raw.decode("utf-8", errors="replace"))
    except (SyntaxError, ValueError) as exc:
        where = f"line {exc.lineno}: " if isinstance(exc, SyntaxError) and exc.lineno else ""
        return f"not Python source this Python reads ({where}{exc.msg if isinstance(exc, SyntaxError) else exc})"


@dataclass
class ForkSource:
    """The fork's Python source (``--fork PATH``: a folder or a file), its classes read with ``ast`` on first use and
    once: a whole fork's tree takes seconds to parse, and every fork row of a file asks it several questions."""

    path: Path
    skipped: dict[Path, str] = field(default_factory=dict)  # file -> why it was not read (not Python source)
    trees: dict[Path, ast.Module] = field(default_factory=dict)  # every file read
    defined: dict[str, list[Path]] = field(default_factory=dict)  # class name -> every file defining one

    @functools.cached_property
    def classes(self) -> dict[str, tuple[ast.ClassDef, Path]]:
        """Class name -> its first definition by path (``defined`` has them all; :func:`find_class` picks)."""
        out: dict[str, tuple[ast.ClassDef, Path]] = {}
        for file in _sources(self.path):
            tree = _parse(file, self.path)
            if isinstance(tree, str):
                if file == self.path:  # the one file given is not Python: say so, not "no class"
                    raise UsageError(f"--fork {self.path}: {tree}; give the fork's Python source folder or a .py file")
                self.skipped[file] = tree  # in a folder, the class may be elsewhere
                continue
            self.trees[file] = tree
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    out.setdefault(node.name, (node, file))
                    if file not in self.defined.setdefault(node.name, []):
                        self.defined[node.name].append(file)
        return out

    def not_read(self) -> str:
        """What the report adds to "no class": the first file skipped and why ("" where none was)."""
        if not self.skipped:
            return ""
        file, why = next(iter(self.skipped.items()))
        more = f" and {len(self.skipped) - 1} more" if len(self.skipped) > 1 else ""
        return f" (not read: {file}: {why}{more})"


def find_class(source: ForkSource, names: list[str]) -> tuple[str, Path] | None:
    """The first of ``names`` that a class of the fork's ``source`` is called, and the file defining it."""
    classes = source.classes
    return next(((n, classes[n][1]) for n in names if n in classes), None)


# --------------------------------------------------------------------------------------------------------------------
# Reading one class


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _called(node: ast.AST) -> set[str]:
    """Names called anywhere in ``node`` (``EMA(c2)``, ``nn.ModuleList(Bottleneck_EMA(...) for _ in range(n))``)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            names.add(func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else "")
    return names


def _self_attr(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _init_attrs(cls: ast.ClassDef) -> dict[str, ast.expr]:
    """``self.X = value`` of ``__init__``: the attribute's name and what builds it (the last assignment)."""
    init = _method(cls, "__init__")
    out: dict[str, ast.expr] = {}
    for node in ast.walk(init) if init is not None else ():
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (name := _self_attr(target)) is not None:
                    out[name] = node.value
    return out


def _ends_with(value: ast.expr, names: set[str]) -> bool:
    """``nn.Sequential(Conv(...), EMA(c2))``: the attention is the last module the attribute applies."""
    func = value.func if isinstance(value, ast.Call) else None
    if getattr(func, "attr", getattr(func, "id", None)) != "Sequential":
        return False
    last = value.args[-1] if isinstance(value, ast.Call) and value.args else None
    return isinstance(last, ast.Call) and bool(_called(last) & names)


@dataclass
class _Forward:
    """One ``forward``: what its names were assigned (line, value), the loop names bound to an attribute's elements
    (``for m, att in zip(self.m, self.atts)``), its input."""

    node: ast.FunctionDef
    assigned: dict[str, list[tuple[int, ast.expr]]]
    bound: dict[str, str]
    inputs: set[str]

    @classmethod
    def of(cls, fn: ast.FunctionDef) -> _Forward:
        assigned: dict[str, list[tuple[int, ast.expr]]] = {}
        bound: dict[str, str] = {}
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                parts = [(target, node.value)] if isinstance(target, ast.Name) else []
                if isinstance(target, ast.Tuple):  # a, b = self.cv1(x).chunk(2, 1): each name is one chunk
                    parts = [(t, ast.Subscript(node.value, ast.Constant(k))) for k, t in enumerate(target.elts)]
                for name, value in parts:
                    if isinstance(name, ast.Name):
                        assigned.setdefault(name.id, []).append((node.lineno, value))
            if isinstance(node, (ast.comprehension, ast.For)):
                zipped = isinstance(node.iter, ast.Call) and getattr(node.iter.func, "id", "") == "zip"
                iters = node.iter.args if isinstance(node.iter, ast.Call) and zipped else []
                one = [(node.target, node.iter)]
                pairs = zip(node.target.elts, iters, strict=False) if isinstance(node.target, ast.Tuple) else one
                for target, source in pairs:
                    if isinstance(target, ast.Name) and (attr := _self_attr(source)) is not None:
                        bound[target.id] = attr
        return cls(fn, assigned, bound, {a.arg for a in fn.args.args[1:2]})

    def callee(self, call: ast.Call) -> str | None:
        """The attribute a call applies: ``self.att(..)``, ``self.atts[i](..)``, ``att(..)`` for ``att`` in it."""
        func = call.func.value if isinstance(call.func, ast.Subscript) else call.func
        if isinstance(func, ast.Name):
            return self.bound.get(func.id)
        return _self_attr(func)

    def resolve(self, node: ast.expr, line: int, depth: int = 0) -> ast.expr:
        """What a name read at ``line`` holds: its last assignment before that line (the input as it came in)."""
        if not isinstance(node, ast.Name) or depth >= MAX_DEPTH:
            return node
        before = [(at, value) for at, value in self.assigned.get(node.id, []) if at < line]
        return self.resolve(before[-1][1], before[-1][0], depth + 1) if before else node

    def applications(self, attrs: set[str]) -> list[ast.expr]:
        """What the attention attributes are applied to (the first argument of each call)."""
        calls = [n for n in ast.walk(self.node) if isinstance(n, ast.Call) and self.callee(n) in attrs]
        calls.sort(key=lambda call: (call.lineno, call.col_offset))
        return [self.resolve(c.args[0], c.lineno) if c.args else c for c in calls]

    def applied_to(self, node: ast.expr, last_conv: str, units: set[str]) -> str:
        """What ``node`` is: "last" (the last conv's or the base block's output), "unit" (a bottleneck's output), or
        where it is instead ("to the input (before cv1)")."""
        if isinstance(node, ast.Call):
            if self.callee(node) == last_conv:
                return "last"
            if isinstance(node.func, ast.Attribute) and node.func.attr == "forward" and _called(node.func) >= {"super"}:
                return "last"
            if self.callee(node) in units:
                return "unit"
        if isinstance(node, ast.Name) and node.id in self.inputs:
            return "to the input (before cv1)"
        if isinstance(node, ast.Subscript) or "chunk" in _called(node) or "split" in _called(node):
            return f"to one chunk ({ast.unparse(node)})"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return f"after the residual addition ({ast.unparse(node)})"
        return f"to {ast.unparse(node)}"


def _where(
    classes: dict[str, tuple[ast.ClassDef, Path]], name: str, names: tuple[str, ...], last_conv: str, depth: int = 0
) -> tuple[str, str]:
    """Where class ``name`` applies the attention ``names``: ("last", how) after ``last_conv``, ("unit", how) in each of
    its bottlenecks, ("refuse", where it does instead), or ("", "") when neither it nor a class it builds has it.
    ``names``: the attention's name first, then its aliases."""
    cls, att = classes[name][0], names[0]
    attrs = _init_attrs(cls)
    own = {a for a, value in attrs.items() if _called(value) & set(names)}
    forward = _method(cls, "forward")
    if own:
        built = f"{name} builds {att} as self.{', self.'.join(sorted(own))}"
        if forward is None:  # the base class's forward: only the attribute it applies last can hold the attention
            at = next((a for a in own if a == last_conv and _ends_with(attrs[a], set(names))), None)
            if at is not None:
                return "last", f"{name}.{at} ends with {att}, applied last by the base forward"
            return "refuse", f"{built} but its (inherited) forward never applies it"
        read = _Forward.of(forward)
        applied = read.applications(own)
        if not applied and last_conv in own and _ends_with(attrs[last_conv], set(names)):
            return "last", f"{name}.{last_conv} ends with {att}"
        if not applied:
            return "refuse", f"{built} but its forward never applies it"
        places = {read.applied_to(node, last_conv, UNITS) for node in applied}
        target = ast.unparse(applied[0])
        if places == {"last"}:
            return "last", f"{name}.forward applies {att} to {target}"
        if places == {"unit"}:
            return (
                "unit",
                f"{name}.forward applies {att} to each bottleneck's output, {target} (Augment attends before the "
                "residual addition: the same where the bottleneck has no shortcut)",
            )
        return (
            "refuse",
            f"{name}.forward applies {att} {'; '.join(sorted(places - {'last', 'unit'})) or 'in two places'}",
        )
    refusal = ("", "")
    for attr, value in attrs.items():
        for inner in sorted(_called(value) & set(classes) - {name}) if depth < MAX_DEPTH else ():
            place, how = _where(classes, inner, names, UNIT_LAST_CONV, depth + 1)
            if place in ("last", "unit"):
                return "unit", f"{name}.{attr} builds {inner}: {how}"
            refusal = (place, f"{name}.{attr} builds {inner}: {how}") if place else refusal
    return refusal


def attention_call(module: str, source: ForkSource, names: tuple[str, ...]) -> ast.Call | None:
    """The call that builds the attention ``names`` in class ``module`` or a class it builds (``Attention(c2, 4)`` in
    ``Bottleneck_Attention.__init__``), the first found; None where none does."""
    classes = source.classes
    todo, seen = [module], set()
    while todo:
        name = todo.pop(0)
        if name in seen or name not in classes or len(seen) > MAX_DEPTH * 4:
            continue
        seen.add(name)
        for value in _init_attrs(classes[name][0]).values():
            for sub in ast.walk(value):
                func = sub.func if isinstance(sub, ast.Call) else None
                if getattr(func, "id", getattr(func, "attr", None)) in names:
                    return sub  # type: ignore[return-value]
            todo += sorted(_called(value) & set(classes))
    return None


def call_values(call: ast.Call, channel_names: set[str]) -> tuple[list[Any], dict[str, Any]] | str:
    """The hyper-parameters a fork's call passes (the positional ones after the channels, the keywords but the
    channel ones) as literals; where one is not a literal (``reduction=r``), what it is."""
    try:
        positional = [ast.literal_eval(a) for a in call.args[1:]]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg and k.arg not in channel_names}
    except ValueError:
        odd = [a for a in [*call.args[1:], *(k.value for k in call.keywords)] if not _literal(a)]
        return f"it passes {ast.unparse(odd[0]) if odd else ast.unparse(call)}, not a literal"
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return f"it passes {ast.unparse(call)}, unpacked"
    return positional, keywords


def _literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def placement(module: str, fork: ForkBlock, source: ForkSource, aliases: tuple[str, ...] = ()) -> tuple[str, str]:
    """(where, how it was decided) for the fork class ``module`` in the fork's ``source``; refused where the class
    is missing or its forward applies the attention neither after the last conv nor in each bottleneck."""
    path, classes = source.path, source.classes
    if module not in classes:
        raise ModuleArgsError(
            f"--fork {path}: no class {module} in its Python files{source.not_read()}; give the folder that defines it"
        )
    file = classes[module][1]
    last_conv = OUTPUT_CONV.get(fork.block, "cv2")
    place, how = _where(classes, module, (fork.attention, *aliases), last_conv)
    if place == "last":
        return "output", f"{file.name}: {how}, so --where output (after the block's last conv)"
    if place == "unit":
        return "bottleneck", f"{file.name}: {how}, so --where bottleneck (in each bottleneck)"
    where = how or f"{module} builds {fork.attention} neither itself nor in a bottleneck class it builds"
    raise ModuleArgsError(
        f"--fork {path}: {where} ({file.name}); {PLACEMENTS}: --where forces one, or write the row by hand"
    )
