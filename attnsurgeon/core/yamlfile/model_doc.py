"""Model YAML in and out: round-trip load/dump that keeps comments, key order, flow style and spelling.

Also resolves packaged Ultralytics names (``yolo11n.yaml``) the way Ultralytics does, renumbers index comments,
and gives text its file's line ending (writing is :mod:`attnsurgeon.core.publish`). No torch, no printing.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from attnsurgeon.core.graph import Graph, SurgeryResult
from attnsurgeon.core.scales import scale_names
from attnsurgeon.core.yamlfile import tree_edits
from attnsurgeon.errors import ModelFileError, SurgeryError, UsageError

SCALES = "nslmx"
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


def _make_yaml() -> YAML:
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

    def dump(self) -> str:
        return dump(self.data)


def loads(text: str, source: str = "<string>") -> CommentedMap:
    try:
        data = _make_yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelFileError(f"{source}: not valid YAML{where}: {problem}") from exc
    except RecursionError:
        raise ModelFileError(f"{source}: not a model YAML: nested too deeply") from None
    tree_edits.check_plain(data, source)
    return data


def dump(data: CommentedMap) -> str:
    buf = io.StringIO()
    _make_yaml().dump(data, buf)
    return buf.getvalue()


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


def with_newline(text: str, newline: str) -> str:
    """``text`` (``"\n"`` line endings) with the line ending of the file it rewrites (``ModelDoc.newline``)."""
    return text.replace("\n", newline) if newline != "\n" else text


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


# --------------------------------------------------------------------------------------------------------------------
# Applying a surgery to the round-trip tree


def _section_slots(data: CommentedMap) -> list[tuple[str, int]]:
    return [(s, j) for s in ("backbone", "head") for j in range(len(data[s]))]


def apply(doc: ModelDoc, result: SurgeryResult, in_place: bool = False) -> CommentedMap:
    """The surgery's rows spliced into the round-trip tree, everything else untouched.

    Works on a fresh copy of ``doc`` unless ``in_place`` (then ``doc.data`` is the result and ``doc`` is spent).
    """
    data = doc.data if in_place else copy_tree(doc)
    old_slots = _section_slots(data)
    old_len = len(old_slots)
    new_graph = result.graph
    inverse = {new: old for old, new in result.index_map.items()}

    # 1. rewrite 'from' of moved/rewired rows in place (keeps the row's flow style and comment) and index comments
    for old in range(old_len):
        if old not in result.index_map:
            continue  # removed below
        new = result.index_map[old]
        section, pos = old_slots[old]
        new_from = new_graph.rows[new].from_
        if new_from != doc.graph.rows[old].from_:
            tree_edits.set_from(data[section], pos, list(new_from) if isinstance(new_from, list) else new_from)
        tree_edits.renumber_comment(tree_edits.comment_token(data[section], pos), old, new)

    # 2. replaced and augmented rows: module and args change, the row keeps its place, 'from' and comment
    for new in (*result.replaced, *result.augmented):
        section, pos = old_slots[inverse[new]]
        tree_edits.replace_row(data[section], pos, new_graph.rows[new].module, list(new_graph.rows[new].args))

    # 3. removed rows go, with their own comment line; the lines after it (blank lines, a section header) stay
    if result.removed and result.insertions:
        raise ValueError("a surgery result either removes or inserts rows, not both")
    for old in sorted(result.removed, reverse=True):
        section, pos = old_slots[old]
        tree_edits.remove_row(data[section], pos)

    # 4. splice the new rows in, from the bottom so earlier positions stay valid
    for ins in sorted(result.insertions, key=lambda x: x.index, reverse=True):
        section, pos = old_slots[inverse[ins.index - 1]]
        seq = data[section]
        row = tree_edits.flow_seq([-1, 1, ins.module, list(ins.args)])
        tree_edits.insert_row(seq, pos + 1, row, f"# {ins.index} {ins.module} {tree_edits.OWN_COMMENT}")
    return data
