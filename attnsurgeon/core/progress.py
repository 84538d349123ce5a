"""How the library reports long steps: one callback type for every command (the CLI shows it on stderr).

``progress("building yolo11n at n")`` names a step; ``progress("timing", 12, 50)`` adds a count. The sweep reports per
variant, so its callback also names the variant.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, done: int | None = None, total: int | None = None) -> None: ...


class SweepProgress(Protocol):
    def __call__(self, stage: str, variant: str, done: int, total: int) -> None: ...


def no_progress(step: str, done: int | None = None, total: int | None = None) -> None:
    """The callback when nobody listens."""
