"""What a catalog module is, as the CLI knows it without building it: its :class:`ModuleSpec` and the
:class:`ArgSpec` of each hyper-parameter, and their plain-literal form for the on-disk scan cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from attnsurgeon.catalog.argcheck import Problem, ambiguity, problems
from attnsurgeon.catalog.values import format_flow
from attnsurgeon.errors import ModuleArgsError

# the layer attnsurgeon.ultralytics_bridge.wrappers writes around a module; no catalog entry may take it
IDENTITY_INIT = "IdentityInit"
CATEGORIES = ("channel", "spatial", "channel+spatial", "self-attention", "convolutional attention")
META_FIELDS = ("category", "paper", "venue", "year", "link", "reference")
# Ultralytics' parse_model writes these attributes on every layer module (docs/architecture.md).
RESERVED_ATTRIBUTES = frozenset({"i", "f", "type", "np"})
MISSING = object()
C1_FIRST = "the constructor must take input channels first: __init__(self, c1, *hyper-parameters with defaults)"


@dataclass(frozen=True)
class ArgSpec:
    """One hyper-parameter of a module, as the YAML lists it."""

    name: str
    default: Any = MISSING
    annotation: str = ""
    help: str = ""
    choices: tuple[Any, ...] | None = None
    limits: tuple[tuple[str, Any], ...] = ()  # declared valid range, see attnsurgeon.catalog.argcheck

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def render(self) -> str:
        text = self.name + (f": {self.annotation}" if self.annotation else "")
        return text if self.required else f"{text} = {self.default!r}"


@dataclass(frozen=True)
class ModuleSpec:
    """Everything the CLI knows about a catalog module without building it."""

    name: str
    category: str
    paper: str
    venue: str
    year: int
    link: str
    reference: str
    import_path: str  # "package.module:ClassName"
    summary: str = ""
    aliases: tuple[str, ...] = ()
    deviations: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    args: tuple[ArgSpec, ...] = ()
    fork_args: tuple[str, ...] = ()  # hyper-parameter order of the forks' constructor, after the channel count
    fork_defaults: tuple[tuple[str, Any], ...] = ()  # (hyper-parameter, the default forks commonly give it)
    source: str = ""  # file the entry was defined in, for error messages
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def signature(self) -> str:
        return f"{self.name}({', '.join(a.render() for a in self.args)})"

    def defaults(self) -> list[Any]:
        return [a.default for a in self.args if not a.required]

    def yaml_line(self, args: Sequence[Any] | None = None) -> str:
        shown = list(args) if args is not None else [a.default for a in self.args if not a.required]
        return f"- [-1, 1, {self.name}, {format_flow(shown)}]"

    def check_args(self, values: Sequence[Any]) -> list[Any]:
        """Check YAML args against the signature and declared ranges; a short list the forks read in their own order
        (``CBAM [7]``: kernel 7 there) comes back completed with the defaults (``[7, 7]``)."""
        found = problems(self, values)
        if found:
            raise ModuleArgsError(f"{self.name} {found[0].text}; signature: {self.signature()}")
        if ambiguity(self, values) is not None:
            return [*values, *(a.default for a in self.args[len(values) :])]
        return list(values)

    def problems_at(self, values: Sequence[Any], c1: int | None, channels: Sequence[int] = ()) -> list[Problem]:
        """What is wrong with ``values`` on ``c1`` input channels (``channels``: as written), fork order included."""
        found = problems(self, values, c1, channels)
        fork = ambiguity(self, values) if not found else None
        return found + ([fork] if fork else [])


def to_plain(spec: ModuleSpec) -> dict[str, Any]:
    """A spec as plain literals (marshal-able); :func:`from_plain` gives back an equal spec."""
    plain = {f.name: getattr(spec, f.name) for f in fields(ModuleSpec) if f.compare}
    plain["args"] = tuple(
        {f.name: getattr(a, f.name) for f in fields(ArgSpec) if not (f.name == "default" and a.required)}
        for a in spec.args
    )
    return plain


def from_plain(plain: dict[str, Any]) -> ModuleSpec:
    return ModuleSpec(**{**plain, "args": tuple(ArgSpec(**a) for a in plain["args"])})
