"""A model YAML read: the file located (a path, or a packaged Ultralytics name such as ``yolo11n.yaml`` resolved the
way Ultralytics does), read into a round-trip tree that keeps comments, key order, flow style and spelling, checked
to hold plain values and an Ultralytics model, and its layer graph, scales and line ending (:class:`ModelDoc`); the
packaged models as layer graphs, for the diagnosis. Editing the tree is :mod:`~attnsurgeon.core.yamlfile.tree_edits`,
writing it back as text :mod:`~attnsurgeon.core.yamlfile.text_writer`. No torch, no printing.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import YAMLError

from attnsurgeon.core.graph import Graph
from attnsurgeon.core.scales import scale_names
from attnsurgeon.errors import ModelFileError, SurgeryError, UsageError

SCALES = "nslmx"
MAX_VALUES = 1_000_000  # far above any model (yolov9e: ~700 values), far below an alias bomb
_SCALE_RE = re.compile(r"yolo(e-)?v?\d+([nslmx])")  # Ultralytics' guess_model_scale


class _Bool(int):
    """A YAML boolean that remembers its spelling (``True`` in Ultralytics files), so dumping does not rewrite it."""

    text: str

    def __new__(cls, value: bool, text: str) -> _Bool:
        obj = super().__new__(cls, bool(value))
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return repr(bool(self))

    def __reduce__(self) -> tuple[type, tuple[bool, str]]:
        return (_Bool, (bool(self), self.text))

    def __deepcopy__(self, memo: dict[int, Any]) -> _Bool:
        return self  # immutable


def round_trip_yaml() -> YAML:
    """The one ruamel.yaml configuration a model file is read and dumped with (round-trip, Ultralytics' indents,
    rows never wrapped, quotes and boolean spellings kept)."""
    yaml = YAML()  # round-trip
    yaml.indent(mapping=2, sequence=4, offset=2)  # Ultralytics' layout: "  - [-1, 1, Conv, ...]"
    yaml.width = 4096  # never wrap a long row
    yaml.preserve_quotes = True

    def construct_bool(constructor: Any, node: Any) -> _Bool:
        return _Bool(constructor.construct_yaml_bool(node), node.value)

    def represent_bool(representer: Any, data: _Bool) -> Any:
        return representer.represent_scalar("tag:yaml.org,2002:bool", data.text)

    def represent_plain_bool(representer: Any, data: bool) -> Any:
        return representer.represent_scalar("tag:yaml.org,2002:bool", "True" if data else "False")

    yaml.constructor.add_constructor("tag:yaml.org,2002:bool", construct_bool)
    yaml.representer.add_representer(_Bool, represent_bool)
    yaml.representer.add_representer(bool, represent_plain_bool)  # new values in Ultralytics' spelling
    return yaml


def to_plain(value: Any) -> Any:
    """ruamel containers and preserved scalars -> plain Python (what Ultralytics' own loader would give)."""
    if isinstance(value, (_Bool, bool)):  # before int: a bool is an int, and True must not become 1
        return bool(value)
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return value


# --------------------------------------------------------------------------------------------------------------------
# Locating a model


_WILDCARDS = set("*?[")  # glob wildcards (pathlib.rglob reads them in a name)


def packaged_models_dir() -> Path | None:
    """Ultralytics' cfg/models folder, found without importing ultralytics (which imports torch)."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "cfg" / "models"


@functools.lru_cache(maxsize=1)
def packaged_graphs() -> tuple[tuple[str, Graph], ...]:
    """(file name, layer graph) of every model YAML that ships with Ultralytics (read once per process): what the
    diagnosis compares a file with."""
    import yaml  # PyYAML (an Ultralytics dependency): its C loader reads the ~70 files 15x faster than ruamel

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    folder = packaged_models_dir()
    out = []
    for path in sorted(folder.rglob("*.yaml")) if folder is not None else ():
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        try:
            out.append((path.name, Graph.from_sections(data["backbone"], data["head"])))
        except (KeyError, TypeError, SurgeryError):
            continue  # not a model layout this tool reads
    return tuple(out)


def guess_scale(path: str | Path) -> str:
    """The scale letter Ultralytics reads from a file name ('' if none): yolo11n -> 'n'."""
    match = _SCALE_RE.search(Path(path).stem)
    return match.group(2) if match else ""


def with_scale(stem: str, letter: str) -> str | None:
    """``yolo11n-SE`` with scale 's' -> ``yolo11s-SE``; None when the name has no scale letter to replace."""
    match = _SCALE_RE.search(stem)
    if not match:
        return None
    return stem[: match.start(2)] + letter + stem[match.end(2) :]


def resolve_model_path(model: str | Path) -> tuple[Path, str, bool]:
    """Resolve a path or packaged name; returns (file to read, requested stem, packaged?).

    Mirrors ``yaml_model_load``: ``yolov8n6`` -> ``yolov8n-p6``, then ``yolo11n.yaml`` -> ``yolo11.yaml``.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.suffix.lower() not in (".yaml", ".yml"):
        if path.exists():
            raise ModelFileError(f"{text}: not a YAML model file (expected a .yaml file or a packaged name)")
        path = path.with_name(path.name + ".yaml")
    if path.is_file():
        return path, path.stem, False
    if path.exists():
        raise ModelFileError(f"{text}: is a directory, not a model YAML file")
    stem = path.stem
    if re.fullmatch(r"yolov[58][nslmx]6", stem):
        stem = re.sub(r"(\d+)([nslmx])6$", r"\1\2-p6", stem)
    packaged = packaged_models_dir()
    # a packaged name is looked up as a glob: '*.yaml' must not pick whichever packaged file sorts first
    if len(path.parts) == 1 and packaged is not None and not _WILDCARDS & set(path.name):
        unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", stem)
        for name in (stem, unified):
            hits = sorted(packaged.rglob(f"{name}{path.suffix}"))
            if hits:
                return hits[0], stem, True
    hint = " (nor a packaged Ultralytics model)" if len(path.parts) == 1 else ""
    raise ModelFileError(f"{text}: no such file{hint}; give a model YAML path or a packaged name like yolo11n.yaml")


# --------------------------------------------------------------------------------------------------------------------
# The document


@dataclass
class ModelDoc:
    """A loaded model YAML: the round-trip tree, its layer graph and where it came from."""

    data: CommentedMap
    graph: Graph
    path: Path  # file read
    stem: str  # stem as requested (keeps the scale letter of a packaged name)
    packaged: bool
    text: str  # as read, "\n" line endings
    newline: str = "\n"  # the file's own line ending ("\r\n" for a Windows file): what a rewrite of it writes

    @property
    def scale(self) -> str:
        return guess_scale(self.stem)

    @property
    def scales(self) -> list[str]:
        return scale_names(self.data)

    def plain(self) -> dict[str, Any]:
        return to_plain(self.data)


def check_plain(data: Any, source: str) -> None:
    """Refuse explicit tags (``!!python/object``: a model file holds plain values only) and aliases that expand beyond
    any model (``&a [*b, *b, ...]``, the "billion laughs"): Ultralytics and attnsurgeon copy every alias out."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, TaggedScalar) or (isinstance(node, (CommentedMap, CommentedSeq)) and node.tag.value):
            tag = str(node.tag.value if isinstance(node, (CommentedMap, CommentedSeq)) else node.tag)
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            raise ModelFileError(f"{source}: uses the YAML tag {tag}; a model file holds plain values only, no tags")
        if not isinstance(node, (dict, list)) or (id(node) in sizes and not children_done):
            continue
        children = list(node.values()) if isinstance(node, dict) else list(node)
        if not children_done:
            sizes[id(node)] = 0  # in progress; a cycle (an alias of its own parent) counts once
            stack.append((node, True))
            stack.extend((c, False) for c in children if isinstance(c, (dict, list, TaggedScalar)))
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
        if sizes[id(node)] > MAX_VALUES:
            raise ModelFileError(
                f"{source}: expands to more than {MAX_VALUES:,} values through YAML aliases (*name); a model file "
                "needs no aliases"
            )


def loads(text: str, source: str = "<string>") -> CommentedMap:
    try:
        data = round_trip_yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelFileError(f"{source}: not valid YAML{where}: {problem}") from exc
    except RecursionError:
        raise ModelFileError(f"{source}: not a model YAML: nested too deeply") from None
    check_plain(data, source)
    return data


def load(model: str | Path) -> ModelDoc:
    """Read a model YAML (path or packaged name) and check it is an Ultralytics model."""
    path, stem, packaged = resolve_model_path(model)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot be read as text ({exc.__class__.__name__}: {exc})") from exc
    newline = "\r\n" if b"\r\n" in raw else "\n"
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as Python's text mode reads it
    data = loads(text, str(path))
    if not isinstance(data, dict):
        raise ModelFileError(
            f"{path}: not an Ultralytics model YAML (the top level must be a mapping with 'backbone' and 'head')"
        )
    missing = [k for k in ("backbone", "head") if k not in data]
    if missing:
        raise ModelFileError(f"{path}: not an Ultralytics model YAML: no {' and no '.join(map(repr, missing))} section")
    for key in ("backbone", "head"):
        if not isinstance(data[key], list) or (key == "backbone" and not data[key]):
            raise ModelFileError(f"{path}: '{key}' must be a list of [from, repeats, module, args] rows")
    try:
        graph = Graph.from_sections(to_plain(data["backbone"]), to_plain(data["head"]))
        graph.validate()
    except SurgeryError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    return ModelDoc(data=data, graph=graph, path=path, stem=stem, packaged=packaged, text=text, newline=newline)


def copy_tree(doc: ModelDoc) -> CommentedMap:
    """A deep copy of ``doc``'s round-trip tree (comments, styles and all). Pickling copies it in well under a
    millisecond where parsing the text again or ``copy.deepcopy`` takes ~25 ms (yolo11n); a tree that does not
    pickle is parsed again."""
    try:
        return pickle.loads(pickle.dumps(doc.data))  # type: ignore[no-any-return]
    except Exception:  # an exotic node type: the text is the source of truth
        return loads(doc.text, str(doc.path))


def copy_doc(doc: ModelDoc) -> ModelDoc:
    """A copy of a loaded model YAML that surgery can spend (``apply(..., in_place=True)``) without touching ``doc``."""
    return dataclasses.replace(doc, data=copy_tree(doc))


def resolve_scales(doc: ModelDoc, scale: str | None) -> tuple[list[str], list[str]]:
    """Scales to verify at, and warnings. ``scale`` is None (the file's), a letter, or 'all'."""
    warnings: list[str] = []
    available = doc.scales
    if scale is not None and scale != "all" and scale not in SCALES:
        raise UsageError(f"--scale {scale!r} is not a scale; use one of n, s, m, l, x or all")
    if not available:
        if scale not in (None, "all"):
            raise ModelFileError(f"{doc.path}: has no 'scales' section, so --scale {scale} cannot apply; drop --scale")
        return [""], warnings
    if scale == "all":
        return list(available), warnings
    if scale is not None:
        if scale not in available:
            raise ModelFileError(f"{doc.path}: has no scale {scale!r}; it has {', '.join(available)}")
        return [scale], warnings
    if doc.scale:
        if doc.scale not in available:
            raise ModelFileError(
                f"{doc.stem}: the name asks for scale {doc.scale!r}, which the YAML lacks; "
                f"it has {', '.join(available)}"
            )
        return [doc.scale], warnings
    if len(available) > 1:
        warnings.append(
            f"{doc.path.name} has no scale letter in its name, so Ultralytics builds it at the first scale "
            f"({available[0]!r}); verified at that scale"
        )
    return [available[0]], warnings
