"""How a command runs, in one frozen object from the CLI through the API to the pipeline.

Every command that edits a model takes the same options: where to write (``output``, ``force``, ``write``,
``dry_run``), how to verify (``verify``, ``scale``, ``imgsz``, ``checks`` on ``device``), how the new layer starts
(``identity_init``), which plugin files join the catalog, and who hears of progress. The CLI builds one
:class:`RunOptions` from its shared options (:mod:`attnsurgeon.cli._options`); the Python API takes it as
``options=`` or as the keyword arguments README documents, mapped onto it by :func:`RunOptions.merged`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnsurgeon.core.progress import Progress, no_progress
from attnsurgeon.core.sizes import DEFAULT_IMGSZ, check_square


@dataclass(frozen=True)
class RunOptions:
    """What to write, how to verify, what to check, how the new layer starts."""

    output: str | Path | None = None  # default: <input stem>-<label>.yaml (or .pt) beside the input
    force: bool = False  # overwrite an existing output (never the input)
    scale: str | None = None  # verify at this scale (default: the file name's); "all" for every scale
    imgsz: int = DEFAULT_IMGSZ  # square size of the checks and GFLOPs
    verify: bool = True  # build, run and train one step; False imports no torch for a YAML
    write: bool = True  # False: compute and verify, write nothing (the API's dry run without a diff)
    dry_run: bool = False  # write nothing; the report carries the diff
    identity_init: bool = False  # the new layer starts as the identity ([IdentityInit, [Module, args]])
    checks: str | tuple[str, ...] | None = None  # opt-in checks: "export,half,val" or "all" (checks.opt_in)
    device: str = "cpu"  # where the opt-in checks run
    plugin_files: tuple[str | Path, ...] = ()  # plugin files that join the catalog first (--plugin)
    progress: Progress | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        check_square(self.imgsz)
        if not isinstance(self.checks, str | type(None)):
            object.__setattr__(self, "checks", tuple(self.checks))
        object.__setattr__(self, "plugin_files", tuple(self.plugin_files))

    @property
    def step(self) -> Progress:
        """The progress callback, or one that ignores every step."""
        return self.progress or no_progress

    def reporting_to(self, progress: Progress) -> RunOptions:
        """The same options, with progress reported to ``progress``."""
        return dataclasses.replace(self, progress=progress)

    def merged(self, keywords: dict[str, Any], command: str, accepted: Sequence[str] | None = None) -> RunOptions:
        """These options with ``keywords`` (an API call's ``**options``) set on top; an unknown keyword is a
        ``TypeError`` as Python raises for a signature, naming the keywords ``command`` takes."""
        names = FIELDS if accepted is None else tuple(accepted)
        unknown = sorted(set(keywords) - set(names))
        if unknown:
            raise TypeError(
                f"{command}() got an unexpected keyword argument {unknown[0]!r}; it takes {', '.join(names)}"
            )
        return dataclasses.replace(self, **keywords) if keywords else self


FIELDS = tuple(f.name for f in dataclasses.fields(RunOptions))
# what remove takes: it adds no layer, so there is nothing to start as the identity
WITHOUT_NEW_LAYER = tuple(name for name in FIELDS if name != "identity_init")


def resolve(options: RunOptions | None, keywords: dict[str, Any], command: str,
            accepted: Sequence[str] | None = None) -> RunOptions:  # fmt: skip
    """The options of one API call: ``options=`` (or the defaults) with its keyword arguments on top."""
    return (options or RunOptions()).merged(keywords, command, accepted)
