"""Progress of long steps (building, verification, profiling, checkpoint surgery) on stderr while they run.

The library reports through a ``progress`` callback: ``progress("building yolo11n at n")``, or with a count
``progress("timing", 12, 50)`` as the profiler does. The CLI turns it into one transient line on stderr (a spinner,
the step, a bar when there is a count, the elapsed time) that disappears when the step is done, so stdout stays the
command's output alone. Nothing is shown when stderr is not a terminal or with ``--json``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from attnsurgeon.core.progress import Progress as ProgressCallback
from attnsurgeon.core.progress import no_progress as _quiet


@contextlib.contextmanager
def progress(enabled: bool = True, console: Any | None = None) -> Iterator[ProgressCallback]:
    """Yield the callback to hand to the API; a live status line on ``console`` (default: stderr) while open."""
    from attnsurgeon.cli._common import console as make_console

    err = console if console is not None else make_console(stderr=True)
    if not enabled or not err.is_terminal:
        yield _quiet
        return
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        TextColumn("{task.fields[count]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        redirect_stdout=False,  # stdout is the command's output; only the status line goes to stderr
    ) as bar:
        task = bar.add_task("starting", total=None, count="")

        def report(step: str, done: int | None = None, total: int | None = None) -> None:
            if total:
                bar.update(task, description=step, completed=done or 0, total=total, count=f"{done or 0}/{total}")
            else:  # no count: the bar pulses
                bar.update(task, description=step, completed=0, total=None, count="")

        yield report


def progress_kwargs(fn: Callable[..., Any], callback: ProgressCallback) -> dict[str, Any]:
    """``{"progress": callback}`` for an API function that takes one, else nothing."""
    return {"progress": callback} if "progress" in inspect.signature(fn).parameters else {}
