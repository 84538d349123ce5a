"""The base class of every catalog module (imports torch).

Ultralytics' ``parse_model`` calls a module it does not know with the YAML args only, without input channels.
``AttentionModule``'s metaclass asks a resolver for the input channels of the layer being built and passes them
first, so a YAML row lists only hyper-parameters. The resolver is installed by ``attnsurgeon.ultra``, the only room
that knows how ``parse_model`` works; called directly (``SE(256, 16)``), a module takes its arguments as written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from torch import nn

# Given the frame that called the constructor, returns the input channels of the layer parse_model is building, or
# None when the constructor was not called by parse_model.
InputChannelResolver = Callable[[FrameType], "int | None"]
_resolver: InputChannelResolver | None = None


def set_input_channel_resolver(resolver: InputChannelResolver | None) -> None:
    global _resolver
    _resolver = resolver


class _InfersInputChannels(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        c1 = _resolver(sys._getframe(1)) if _resolver is not None else None
        if c1 is not None:
            args = (c1, *args)
        return super().__call__(*args, **kwargs)


class AttentionModule(nn.Module, metaclass=_InfersInputChannels):
    """A shape-preserving attention block: ``forward(x)`` returns a tensor shaped like ``x``.

    Subclasses take ``(c1, *hyper)``; ``c1`` is the number of input (and output) channels.
    """
