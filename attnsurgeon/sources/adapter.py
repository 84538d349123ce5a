"""Attention modules as their authors wrote them: a plain ``torch.nn.Module`` class behind a generated adapter.

A paper's repository, timm or Ultralytics write ``CBAMBlock(channel=512, reduction=16, kernel_size=49)``; a catalog
module is ``(c1, *hyper)``. :func:`spec_of` reads the class's constructor once: the channel argument (the first
parameter named like one, :data:`CHANNEL_NAMES`, or the one the user names), the output-channel arguments that must
equal it to keep the shape (:data:`SAME_AS_INPUT`), and every other parameter as a hyper-parameter, positional or
keyword-only. :func:`make_adapter` then makes a subclass of :class:`~attnsurgeon.catalog.base.AttentionModule`
named after the module, whose constructor takes ``(c1, *hyper)`` and builds the class with the channel argument
bound to ``c1``, always (a default such as ``channel=512`` never survives), and the hyper-parameters bound by the
signature: by position after the channel, or by keyword from one mapping at the end of the YAML args
(``[8, {kernel_size: 7}]``; Ultralytics' ``parse_model`` passes a mapping through untouched).

Torch is imported only by :func:`make_adapter` (the probe before a build is :func:`attnsurgeon.sources.refuse`).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from attnsurgeon.catalog.argcheck import Problem
from attnsurgeon.catalog.spec import MISSING, ArgSpec, ModuleSpec
from attnsurgeon.catalog.values import format_flow
from attnsurgeon.core.names import close_names
from attnsurgeon.errors import ModuleArgsError, PluginError

# Names public attention code gives the input channels (External-Attention-pytorch, timm, Ultralytics, mmcv, ...).
CHANNEL_NAMES = (
    "c1", "channel", "channels", "in_channels", "in_channel", "in_planes", "inplanes", "in_chs", "in_ch", "in_dim",
    "dim", "inp", "gate_channels", "n_feats", "num_channels", "input_channels", "channels_in", "in_c", "inc", "nf",
    "num_feat", "c", "ch", "planes", "d_model",
)  # fmt: skip
# Output channels: bound to the input channels as well, so the module keeps its input's shape (Ultralytics' PSA).
SAME_AS_INPUT = (
    "c2", "out_channels", "out_channel", "out_planes", "outplanes", "out_chs", "out_ch", "out_dim", "dim_out",
    "oup", "ouc", "outc", "channels_out", "out_c",
)  # fmt: skip
# How a class takes a feature map, besides (B, C, H, W), and the shape it gets: tokens, as vision transformers'
# attention does; channels-last; qkv: the tokens given three times, to a forward(q, k, v) asked for self-attention.
LAYOUTS = {"tokens": "B, H*W, C", "channels-last": "B, H, W, C", "qkv": "q = k = v = the B, H*W, C tokens"}
NAME_IT = "name it with --channel-arg NAME"  # adopt, which has no --channel-arg, says how it names one instead
NOT_MODULE = "is not a torch.nn.Module subclass; an attention module is a class whose forward(x) returns x's shape"


@dataclass(frozen=True)
class ForeignSpec(ModuleSpec):
    """A plain ``nn.Module`` class as the catalog sees it. ``origin``: where it comes from (``/abs/path.py:Class``,
    ``timm:CbamModule``), as recorded in a YAML; ``channel_arg``: the parameter bound to the input channels, "" for a
    channel-free class (ECA's ``(kernel_size=3)``: built with its own arguments, at any width)."""

    origin: str = ""
    channel_arg: str = ""
    same_as_input: tuple[str, ...] = ()
    keyword_only: tuple[str, ...] = ()
    foreign_name: str = ""  # the class's own name (the adapter's may carry a prefix)
    # Read from the file's syntax tree, not imported yet (a command that builds no model runs no code of the file);
    # ``read`` is False when the constructor could not be read there (an inherited ``__init__``).
    pending: bool = False
    read: bool = True
    layout: str = ""  # one of LAYOUTS, "" for (B, C, H, W): the adapter folds the map to it and back

    @property
    def signature_known(self) -> bool:
        return self.read

    def defaults(self) -> list[Any]:
        return []  # the class's own defaults apply; they need not be YAML literals (act_layer=nn.ReLU)

    def signature(self) -> str:
        if not self.signature_known:
            return f"{self.name}(...) (its constructor is read when the model is built)"
        given = [f"{n}=<input channels>" for n in (self.channel_arg, *self.same_as_input) if n]
        plain = [a.render() for a in self.args if a.name not in self.keyword_only]
        kw_only = [a.render() for a in self.args if a.name in self.keyword_only]
        return f"{self.name}({', '.join([*given, *plain, *(['*', *kw_only] if kw_only else [])])})"

    def yaml_line(self, args: Sequence[Any] | None = None) -> str:
        return f"- [-1, 1, {self.name}, {format_args(list(args or []))}]"

    def check_args(self, values: Sequence[Any]) -> list[Any]:
        problem = binding_problem(self, values) if self.signature_known else ""
        if problem:
            raise ModuleArgsError(f"{self.name} {format_args(values)}: {problem}; signature: {self.signature()}")
        return list(values)

    def problems_at(self, values: Sequence[Any], c1: int | None, channels: Sequence[int] = ()) -> list[Problem]:
        problem = binding_problem(self, values) if self.signature_known else ""
        return [Problem(problem)] if problem else []


def format_args(values: Sequence[Any]) -> str:
    """YAML args as a row writes them, a trailing mapping included: ``[8, {kernel_size: 7}]``."""
    return format_flow(values)


def is_foreign(spec: Any) -> bool:
    return isinstance(spec, ForeignSpec)


def channel_param(cls: type, given: str | None, label: str) -> str:
    """The constructor parameter that takes the input channels: ``given`` (``--channel-arg``), else the first one
    named like a channel count."""
    return choose_channel(_params(cls, label), cls.__name__, given, label)


def choose_channel(params: Sequence[inspect.Parameter], class_name: str, given: str | None, label: str) -> str:
    """:func:`channel_param` over a constructor's parameters (read by ``inspect`` or from the syntax tree)."""
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if given:
        if given not in names:
            raise PluginError(f"{label}: --channel-arg {given!r} is not a parameter of {class_name}{_listed(names)}")
        param = next(p for p in params if p.name == given)
        if isinstance(param.default, bool) or param.annotation in (bool, "bool"):
            raise PluginError(
                f"{label}: --channel-arg {given!r} is a flag of {class_name} (a bool), not a width; a class without "
                "a channel argument is built with its own arguments: leave --channel-arg out"
            )
        return given
    found = next((n for n in names if n in CHANNEL_NAMES), None)
    required = [p.name for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if found is None and not required:
        return ""  # channel-free: built with its own arguments, the probe tells whether it keeps every width
    if found is None:
        raise PluginError(
            f"{label}: {class_name}{_listed(names)} has no channel argument (a parameter named like channel, "
            f"channels, in_channels, in_planes, dim, c1...); {NAME_IT}"
        )
    return found


def _listed(names: Sequence[str]) -> str:
    return f"({', '.join(names)})" if names else " (its constructor takes no parameter)"


def _params(cls: type, label: str) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError) as exc:
        raise PluginError(f"{label}: cannot read the constructor of {cls.__name__}: {exc}") from None


def spec_of(cls: type, *, name: str, origin: str, label: str, channel_arg: str | None = None) -> ForeignSpec:
    """The catalog entry of a plain ``nn.Module`` class (its constructor read with ``inspect``)."""
    doc = cls.__doc__ if isinstance(cls.__dict__.get("__doc__"), str) else ""  # its own, not nn.Module's
    doc = inspect.cleandoc(doc) if doc else ""
    try:
        source = inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        source = cls.__module__
    summary = doc.strip().splitlines()[0] if doc.strip() else f"{cls.__name__} from {origin}"
    params = _params(cls, label)
    return spec_from_params(params, cls.__name__, name, origin, label, channel_arg, summary, source)


def spec_from_params(
    params: Sequence[inspect.Parameter] | None,
    class_name: str,
    name: str,
    origin: str,
    label: str,
    channel_arg: str | None,
    summary: str,
    source: str,
    pending: bool = False,
) -> ForeignSpec:
    """The entry of a class from its constructor's parameters; ``params`` None: not read yet (a pending entry whose
    arguments are checked when the class is imported)."""
    channel = choose_channel(params, class_name, channel_arg, label) if params is not None else channel_arg or ""
    args, same, kw_only = [], [], []
    for p in params or ():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == channel:
            continue
        if p.name in SAME_AS_INPUT:
            same.append(p.name)
            continue
        if p.kind is p.KEYWORD_ONLY:
            kw_only.append(p.name)
        annotation = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
        default = MISSING if p.default is inspect.Parameter.empty else p.default
        args.append(ArgSpec(p.name, default, "" if p.annotation is inspect.Parameter.empty else str(annotation)))
    return ForeignSpec(
        name=name,
        category="foreign",
        paper="",
        venue="",
        year=0,
        link="",
        reference=origin,
        import_path=f"{HOLDER_NAME}:{name}",
        summary=summary,
        args=tuple(args),
        source=source,
        origin=origin,
        channel_arg=channel,
        same_as_input=tuple(same),
        keyword_only=tuple(kw_only),
        foreign_name=class_name,
        pending=pending,
        read=params is not None,
    )


class _Expression:
    """A default the syntax tree holds as code (``act_layer=nn.ReLU``): shown as written, never evaluated."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def params_in_tree(node: ast.ClassDef) -> list[inspect.Parameter] | None:
    """The constructor parameters of a class as its source writes them (no import); None when the class defines no
    ``__init__`` of its own (inherited: only importing it tells)."""
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:  # nn.Module's own constructor takes nothing; another base's is read when imported
        plain = node.bases and all(ast.unparse(b) in ("nn.Module", "torch.nn.Module", "Module") for b in node.bases)
        return [] if plain else None
    a = init.args

    def value(expr: ast.expr | None) -> Any:
        if expr is None:
            return inspect.Parameter.empty
        try:
            return ast.literal_eval(expr)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _Expression(ast.unparse(expr))

    def annotation(expr: ast.expr | None) -> Any:
        return inspect.Parameter.empty if expr is None else ast.unparse(expr)

    plain = [*a.posonlyargs, *a.args]
    defaults = [None] * (len(plain) - len(a.defaults)) + list(a.defaults)
    out = []
    for i, (arg, default) in enumerate(zip(plain, defaults, strict=True)):
        kind = inspect.Parameter.POSITIONAL_ONLY if i < len(a.posonlyargs) else inspect.Parameter.POSITIONAL_OR_KEYWORD
        out.append(inspect.Parameter(arg.arg, kind, default=value(default), annotation=annotation(arg.annotation)))
    out = out[1:]  # self
    if a.vararg is not None:
        out.append(inspect.Parameter(a.vararg.arg, inspect.Parameter.VAR_POSITIONAL))
    for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        out.append(
            inspect.Parameter(
                arg.arg, inspect.Parameter.KEYWORD_ONLY, default=value(default), annotation=annotation(arg.annotation)
            )
        )
    if a.kwarg is not None:
        out.append(inspect.Parameter(a.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    return out


HOLDER_NAME = "attnsurgeon_foreign"  # the module name of every adapter class (they are found through the registry)


def split(values: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """YAML args -> (positional hyper-parameters, keywords): one mapping at the end holds the keywords."""
    positional = list(values)
    keywords = dict(positional.pop()) if positional and isinstance(positional[-1], dict) else {}
    return positional, keywords


def binding_problem(spec: ForeignSpec, values: Sequence[Any]) -> str:
    """Why ``values`` do not bind to the class's constructor ('' when they do)."""
    positional, keywords = split(values)
    if any(isinstance(v, dict) for v in positional):
        return "keyword arguments go in one mapping at the end, e.g. [8, {kernel_size: 7}]"
    slots = [a.name for a in spec.args if a.name not in spec.keyword_only]
    names = [a.name for a in spec.args]
    if len(positional) > len(slots):
        after = f"after {spec.channel_arg}: {', '.join(slots)}" if slots else f"besides {spec.channel_arg}"
        if not spec.channel_arg:
            after = ", ".join(slots) or "none"
        return f"takes {len(slots)} positional hyper-parameter(s) ({after}), got {len(positional)}"
    for key in keywords:
        if key == spec.channel_arg or key in spec.same_as_input:
            return f"{key} is the input channel count, inferred from the layer the module follows; do not give it"
        if key not in names:
            near = close_names(str(key), names)
            hint = f"; did you mean {' or '.join(near[:2])}?" if near else f"; it takes {', '.join(names) or 'none'}"
            return f"has no parameter {key!r}{hint}"
        if key in slots[: len(positional)]:
            return f"{key} is given twice, by position and by keyword"
    bound = set(slots[: len(positional)]) | set(keywords)
    missing = [a.name for a in spec.args if a.required and a.name not in bound]
    if missing:
        return f'needs {", ".join(missing)} (no default), e.g. --args "{{{missing[0]}: ...}}"'
    return ""


def call_arguments(spec: ForeignSpec, cls: type, c1: int, values: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments that build ``cls`` on ``c1`` input channels."""
    positional, keywords = split(values)
    slots = [a.name for a in spec.args if a.name not in spec.keyword_only]
    bound = {**dict(zip(slots, positional, strict=False)), **keywords}
    bound.update({n: c1 for n in (spec.channel_arg, *spec.same_as_input) if n})
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in _params(cls, spec.origin):
        if p.name not in bound:
            continue
        if p.kind is p.POSITIONAL_ONLY:
            args.append(bound[p.name])
        else:
            kwargs[p.name] = bound[p.name]
    return args, kwargs


def make_adapter(spec: ForeignSpec, cls: type, reduce: Callable[..., Any]) -> type:
    """The catalog class of ``cls``: ``Adapter(c1, *hyper)`` holds ``cls`` built on ``c1`` channels as ``block``
    (imports torch). ``reduce`` is its ``__reduce_ex__``: how an instance pickles so a fresh process finds it."""
    from attnsurgeon.catalog.base import AttentionModule

    def __init__(self: Any, c1: int, *args: Any, **kwargs: Any) -> None:
        AttentionModule.__init__(self)
        values = [*args, kwargs] if kwargs else list(args)
        problem = binding_problem(spec, values)
        if problem:
            raise ModuleArgsError(f"{spec.name} {format_args(values)}: {problem}; signature: {spec.signature()}")
        call_args, call_kwargs = call_arguments(spec, cls, int(c1), values)
        self.block = cls(*call_args, **call_kwargs)

    def forward(self: Any, x: Any) -> Any:
        return fold(self.block, x, spec.layout, sizes)

    sizes = _takes_sizes(cls)
    namespace = {
        "__init__": __init__,
        "forward": forward,
        "__module__": HOLDER_NAME,
        "__qualname__": spec.name,
        "__doc__": f"{spec.summary}\n\n{cls.__module__}.{cls.__qualname__} from {spec.origin}, adapted by attnsurgeon.",
        "__reduce_ex__": reduce,
        "foreign_spec": spec,
        "foreign_class": cls,
    }
    return type(AttentionModule)(spec.name, (AttentionModule,), namespace)


def _takes_sizes(cls: type) -> bool:
    """Whether ``cls.forward`` takes the map's height and width after the tokens (``forward(x, H, W)``, as PVT's and
    many token-attention classes do)."""
    try:
        params = list(inspect.signature(cls.forward).parameters)[1:]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
    return [p.lower() for p in params[1:3]] == ["h", "w"]


def fold(block: Any, x: Any, layout: str, sizes: bool = False) -> Any:
    """``block`` applied to the feature map ``x`` (B, C, H, W) in its ``layout``, the result folded back to
    (B, C, H, W); a block that returns (output, attention weights) gives its output."""
    if not layout:
        return block(x)
    b, c, h, w = x.shape
    if layout == "channels-last":
        y = block(x.permute(0, 2, 3, 1))
        y = y[0] if isinstance(y, tuple) else y
        return y.permute(0, 3, 1, 2)
    t = x.flatten(2).transpose(1, 2)
    extra = (h, w) if sizes else ()
    y = block(t, t, t, *extra) if layout == "qkv" else block(t, *extra)
    y = y[0] if isinstance(y, tuple) else y
    return y.transpose(1, 2).reshape(b, c, h, w)
