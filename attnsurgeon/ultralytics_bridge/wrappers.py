"""Layers that wrap a catalog module in a YAML row (imports torch); not catalog entries, so ``list`` omits them.

``IdentityInit`` is what ``insert --identity-init`` writes::

    - [-1, 1, IdentityInit, [SE, [16]]]   # y = x + gamma * (SE(x) - x), gamma = 0 at initialisation

The YAML row describes the whole architecture, so ``YOLO("model.yaml")`` rebuilds the same module tree (and loads the
weights of a checkpoint made from it).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.catalog.base import AttentionModule, check_placed
from attnsurgeon.catalog.registry import IDENTITY_INIT
from attnsurgeon.errors import ModuleArgsError

F = TypeVar("F", bound=Callable[..., Any])


class IdentityInit(AttentionModule):
    """A catalog module blended with its input by a learnable gate that starts closed: exactly the identity at step 0.

    ``forward(x) = x + gamma * (inner(x) - x)`` with a scalar ``gamma`` initialised to 0 (``gamma=1`` is the bare
    module). Inserted into a trained model, the model's outputs are unchanged until training moves ``gamma``.
    Trade-off: at step 0 only ``gamma`` receives a gradient (the inner module's gradient is scaled by ``gamma``); the
    inner module's parameters start moving from the second step, once ``gamma`` is non-zero. ``gamma`` is a weight,
    so Ultralytics' optimizer applies weight decay to it, which pulls towards the identity.
    """

    def __init__(self, c1: int, module: str, args: Sequence[Any] = (), gamma: float = 0.0) -> None:
        super().__init__()
        if not isinstance(module, str):
            raise ModuleArgsError(f"{IDENTITY_INIT} takes a catalog module name first, got {module!r}")
        if not isinstance(args, (list, tuple)):
            raise ModuleArgsError(
                f"{IDENTITY_INIT} takes the module's arguments as a list, e.g. [SE, [16]]; got {args!r}"
            )
        spec = REGISTRY.get(module)
        values = spec.check_args(list(args))
        check_placed(spec, values, c1)
        self.module_name = spec.name
        self.inner = REGISTRY.load_class(spec.name)(c1, *values)
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gamma.to(x.dtype) * (self.inner(x) - x)

    def extra_repr(self) -> str:
        return f"module={self.module_name}"


WRAPPERS: dict[str, type[nn.Module]] = {IDENTITY_INIT: IdentityInit}


@contextlib.contextmanager
def gates_opened(model: nn.Module, value: float = 0.5) -> Iterator[int]:
    """Temporarily set every ``IdentityInit`` gate to ``value`` so a gradient check reaches the inner modules.

    Yields the number of gates opened; the original values are restored on exit.
    """
    saved = [(m, m.gamma.detach().clone()) for m in model.modules() if isinstance(m, IdentityInit)]
    try:
        with torch.no_grad():
            for m, _ in saved:
                m.gamma.fill_(value)
        yield len(saved)
    finally:
        with torch.no_grad():
            for m, old in saved:
                m.gamma.copy_(old)


def with_gates_opened(fn: F) -> F:
    """Decorate a check taking the model first so it runs (forward and backward) with every gate opened.

    A gradient check on a model with closed ``IdentityInit`` gates would report the inner modules' zero gradients.
    """

    @functools.wraps(fn)
    def wrapper(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        with gates_opened(model):
            return fn(model, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
