"""The base class of every catalog module (imports torch).

Ultralytics' ``parse_model`` calls a module it does not know with the YAML args only, without input channels.
``AttentionModule``'s metaclass asks a resolver for the input channels of the layer being built and passes them
first, so a YAML row lists only hyper-parameters. The resolver is installed by
``attnsurgeon.ultralytics_bridge.ultra``, the only room
that knows how ``parse_model`` works; called directly (``SE(256, 16)``), a module takes its arguments as written.
Built by ``parse_model``, arguments that cannot be what the module means on those input channels are refused
(:func:`check_placed`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from torch import nn

from attnsurgeon.catalog.argcheck import CHANNEL_CAUSE, format_flow
from attnsurgeon.errors import ModuleArgsError

# Given the frame that called the constructor, returns the input channels of the layer parse_model is building, or
# None when the constructor was not called by parse_model.
InputChannelResolver = Callable[[FrameType], "int | None"]
_resolver: InputChannelResolver | None = None


def set_input_channel_resolver(resolver: InputChannelResolver | None) -> None:
    global _resolver
    _resolver = resolver


def check_placed(spec: Any, values: list[Any], c1: int) -> None:
    """Refuse hyper-parameters that cannot be what the module means on ``c1`` input channels (a channel count
    where a reduction is expected, ...): a model must never build as a silently different module."""
    found = spec.problems_at(values, c1)
    if found:
        cause = f"; {CHANNEL_CAUSE}" if found[0].channel_like else ""
        raise ModuleArgsError(
            f"{spec.name} {format_flow(values)} on {c1} input channels: {found[0].text}; signature "
            f"{spec.signature()}{cause}; fix the YAML with: attnsurgeon adopt FILE.yaml"
        )


class _InfersInputChannels(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        c1 = _resolver(sys._getframe(1)) if _resolver is not None else None
        if c1 is not None:
            spec = cls.__dict__.get("spec")  # registered catalog classes only, not their subclasses
            if spec is not None and not kwargs:
                check_placed(spec, list(args), c1)
            args = (c1, *args)
        return super().__call__(*args, **kwargs)


class AttentionModule(nn.Module, metaclass=_InfersInputChannels):
    """A shape-preserving attention block: ``forward(x)`` returns a tensor shaped like ``x``.

    Subclasses take ``(c1, *hyper)``; ``c1`` is the number of input (and output) channels.
    """
