"""``new-module`` and ``check-module``: a new catalog module and its test, written from the templates that ship with
attnsurgeon; the module contract run on a module.

The templates live in the project's top-level ``templates/`` and are installed as the package
``attnsurgeon.templates`` (setup.py maps it), so an installed attnsurgeon finds them without a source checkout.
No torch, no printing.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnsurgeon import sources
from attnsurgeon.catalog import CATEGORIES, REGISTRY, name_rules
from attnsurgeon.core import publish
from attnsurgeon.core.report import Check
from attnsurgeon.errors import AttnSurgeonError, OutputError, UsageError

MODULE_TEMPLATE = "module.py.tmpl"
TEST_TEMPLATE = "test_module.py.tmpl"


def template_dir() -> Path:
    """The installed ``attnsurgeon.templates`` package, or a source checkout's ``templates/`` (PYTHONPATH use)."""
    try:
        spec = importlib.util.find_spec("attnsurgeon.templates")
    except ModuleNotFoundError:
        spec = None
    found = [Path(p) for p in (spec.submodule_search_locations or [])] if spec is not None else []
    found.append(Path(__file__).resolve().parents[1] / "templates")
    for folder in found:
        if (folder / MODULE_TEMPLATE).is_file() and (folder / TEST_TEMPLATE).is_file():
            return folder
    raise AttnSurgeonError("the module templates are missing from this attnsurgeon installation; reinstall it")


def snake_case(name: str) -> str:
    """``MyAttention`` -> ``my_attention``, ``SEv2`` -> ``se_v2``: the module's file name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@dataclass
class NewModule:
    name: str
    module_file: Path
    test_file: Path

    def next_commands(self) -> list[str]:
        return [
            f"attnsurgeon check-module --plugin {self.module_file}",
            f"python -m pytest {self.test_file}",
            f"attnsurgeon insert yolo11n.yaml -m {self.name} --after 8 --plugin {self.module_file}",
        ]


def check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
        better = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)
        hint = f"; e.g. {better}" if better and better[0].isalpha() else ""
        raise UsageError(f"module name {name!r} must be a class name: a capital letter, then letters and digits{hint}")
    taken = REGISTRY.find(name)
    if taken is not None:
        owner = "the built-in module" if REGISTRY.is_builtin(taken.name) else f"{taken.source}'s module"
        raise UsageError(f"module name {name!r} is taken by {owner} {taken.name}; choose another name")
    if name in name_rules.ultralytics_names():
        raise UsageError(f"module name {name!r} is an Ultralytics name; YAML rows would build Ultralytics' class")


def render(template: str, name: str, category: str) -> str:
    text = (template_dir() / template).read_text(encoding="utf-8")
    values = {"Name": name, "module": snake_case(name), "category": category, "year": str(datetime.date.today().year)}
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def new_module(name: str, directory: str | Path = ".", category: str = "channel") -> NewModule:
    """Write ``<snake_name>.py`` and ``test_<snake_name>.py`` into ``directory``; never overwrites."""
    check_name(name)
    if category not in CATEGORIES:
        raise UsageError(f"--category {category!r} is not a category; use one of: {', '.join(CATEGORIES)}")
    folder = Path(directory).expanduser()
    blocked = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:  # a missing folder is made (as mkdir -p would); a file in the way is refused
        raise OutputError(f"--dir {folder}: {blocked} is a file, not a folder")
    module_name = snake_case(name)
    made = NewModule(name, folder / f"{module_name}.py", folder / f"test_{module_name}.py")
    for path in (made.module_file, made.test_file):
        if path.exists():
            raise _exists(path)
    module_text = render(MODULE_TEMPLATE, name, category)
    test_text = render(TEST_TEMPLATE, name, category)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"--dir {folder}: cannot be made: {exc.strerror or exc}") from None
    # both or neither, and never over a file that appeared since the check above
    publish.publish_all([(made.module_file, module_text), (made.test_file, test_text)], force=False, refuse=_exists)
    return made


def _exists(path: Path) -> OutputError:
    return OutputError(f"{path} exists; new-module never overwrites (choose another name or --dir)")


def plugin_module_names(plugin_files: Sequence[str | Path]) -> list[str]:
    """The modules the given plugin files register."""
    return [spec.name for spec in sources.add_files(plugin_files)]


def check_module(
    name: str, plugin_files: Sequence[str | Path] = (), models: bool = True, args: Sequence[Any] | None = None
) -> list[Check]:
    """The module contract (:mod:`attnsurgeon.checks.contract`, imports torch) on one catalog or plugin module, built
    with ``args`` (its hyper-parameters, as ``insert --args`` takes them) or its defaults."""
    from attnsurgeon.checks import contract

    sources.add_files(plugin_files)
    return contract.run(name, models=models, args=args)
