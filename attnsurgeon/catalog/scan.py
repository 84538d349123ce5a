"""The torch-free view of the built-in catalog: each module file's ``register_module`` decorator and ``__init__``
signature read from its syntax tree, so ``list``, ``info`` and ``insert --no-verify`` never import torch. The result
is cached on disk (attnsurgeon.core.diskcache), keyed by the catalog files' stat, as every command reads it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from attnsurgeon.catalog.argcheck import check_names, limits_from
from attnsurgeon.catalog.spec import C1_FIRST, META_FIELDS, MISSING, ArgSpec, ModuleSpec, from_plain, to_plain
from attnsurgeon.core import diskcache
from attnsurgeon.errors import RegistryError

CATALOG_DIR = Path(__file__).resolve().parent
MODULES_DIR = CATALOG_DIR / "modules"  # the built-in modules, one file per paper
_NOT_MODULES = {"__init__", "building_blocks"}  # the modules folder's shared pieces


def _literal(node: ast.AST, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise RegistryError(f"{where}: register_module arguments and defaults must be literals") from exc


def scan_file(path: Path, module_name: str | None = None, tree: ast.Module | None = None) -> list[ModuleSpec]:
    """Read the registered classes of one catalog (or plugin) file without importing it."""
    module_name = module_name or f"attnsurgeon.catalog.modules.{path.stem}"
    tree = tree or ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    specs = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for dec in node.decorator_list:
            if not (
                isinstance(dec, ast.Call)
                and getattr(dec.func, "id", getattr(dec.func, "attr", "")) == "register_module"
            ):
                continue
            where = f"{path.name}:{node.name}"
            kw = {k.arg: _literal(k.value, where) for k in dec.keywords}
            init = next((b for b in node.body if isinstance(b, ast.FunctionDef) and b.name == "__init__"), None)
            if init is None:
                raise RegistryError(f"{where}: a registered class needs its own __init__(self, c1, ...)")
            positional = init.args.posonlyargs + init.args.args
            if len(positional) < 2 or positional[1].arg != "c1":
                raise RegistryError(f"{where}: {C1_FIRST}")
            defaults = [MISSING] * (len(positional) - len(init.args.defaults)) + [
                _literal(d, where) for d in init.args.defaults
            ]
            arg_help = kw.get("arg_help") or {}
            choices = kw.get("choices") or {}
            limits = limits_from(kw.get("ranges"), [a.arg for a in positional[2:]], where)
            fork_args = tuple(kw.get("fork_args", ()))
            fork_defaults = tuple((kw.get("fork_defaults") or {}).items())
            args = tuple(
                ArgSpec(
                    a.arg,
                    d,
                    ast.unparse(a.annotation) if a.annotation is not None else "",
                    arg_help.get(a.arg, ""),
                    tuple(choices[a.arg]) if a.arg in choices else None,
                    limits.get(a.arg, ()),
                )
                for a, d in list(zip(positional, defaults, strict=True))[2:]  # drop self, c1
            )
            check_names(where, {a.name for a in args}, arg_help, fork_args, [n for n, _ in fork_defaults])
            doc = ast.get_docstring(node) or ""
            specs.append(
                ModuleSpec(
                    name=kw.get("name") or node.name,
                    aliases=tuple(kw.get("aliases", ())),
                    summary=doc.strip().splitlines()[0] if doc.strip() else "",
                    deviations=tuple(kw.get("deviations", ())),
                    constraints=tuple(kw.get("constraints", ())),
                    args=args,
                    fork_args=fork_args,
                    fork_defaults=fork_defaults,
                    import_path=f"{module_name}:{node.name}",
                    source=str(path),
                    **{k: kw[k] for k in META_FIELDS},
                )
            )
    return specs


def _module_files() -> list[Path]:
    return [
        path
        for path in sorted(MODULES_DIR.glob("*.py"))
        if path.stem not in _NOT_MODULES and not path.stem.startswith("_")
    ]


def _scan_all() -> tuple[dict[str, Any], ...]:
    found: dict[str, ModuleSpec] = {}
    for path in _module_files():
        for spec in scan_file(path):
            if spec.name in found:
                other = found[spec.name]
                raise RegistryError(
                    f"module name {spec.name!r} is registered twice: by {other.import_path} and by {spec.import_path}"
                )
            found[spec.name] = spec
    return tuple(to_plain(s) for s in found.values())


def scan_builtins() -> dict[str, ModuleSpec]:
    """Name -> spec of every built-in catalog module (from the cache while no catalog file changed)."""
    code = [Path(__file__), CATALOG_DIR / "spec.py", CATALOG_DIR / "argcheck.py", CATALOG_DIR / "values.py"]
    plain = diskcache.cached("catalog-specs", [*code, MODULES_DIR, *_module_files()], _scan_all)
    return {p["name"]: from_plain(p) for p in plain}
