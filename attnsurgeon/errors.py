"""The one exception tree of attnsurgeon.

Library code raises these; only the CLI catches them, prints ``str(error)`` as one line and exits with
``error.exit_code``. Every message names what was wrong and what would be right.
"""

from __future__ import annotations


class AttnSurgeonError(Exception):
    """Base of every error attnsurgeon reports to a user."""

    exit_code = 1


class UsageError(AttnSurgeonError):
    """A command-line value that cannot be used (bad option value, conflicting options)."""

    exit_code = 2


class ModelFileError(AttnSurgeonError):
    """A model file that is missing, unreadable, not YAML, or not an Ultralytics model."""

    exit_code = 3


class SurgeryError(AttnSurgeonError):
    """An insertion that cannot be done: bad target index, a layer with no single feature map, ..."""

    exit_code = 4


class UnknownModuleError(AttnSurgeonError):
    """A module name that is not in the catalog; the message suggests the closest names."""

    exit_code = 5


class ModuleArgsError(AttnSurgeonError):
    """Hyper-parameters that do not fit a module's signature."""

    exit_code = 6


class NeedsAdoptionError(ModuleArgsError):
    """A YAML written for a forked Ultralytics: a catalog row whose args would build a different module.
    ``attnsurgeon adopt`` rewrites it."""


class RegistryError(AttnSurgeonError):
    """A catalog registration that conflicts with another (duplicate name) or breaks the module contract."""

    exit_code = 7


class PluginError(RegistryError):
    """A plugin file or entry point that cannot be used: missing, broken, registers nothing, or breaks a rule."""


class OutputError(AttnSurgeonError):
    """An output path that exists (without --force), sits in a missing directory, or cannot be written."""

    exit_code = 8


class VerificationError(AttnSurgeonError):
    """A built model failed a check (build, forward, training step, liveness). Nothing was written."""

    exit_code = 9

    def __init__(self, message: str, checks: list | None = None) -> None:
        super().__init__(message)
        self.checks = checks or []


class CheckpointError(AttnSurgeonError):
    """A checkpoint that is not an Ultralytics checkpoint, is corrupted, or does not fit the architecture."""

    exit_code = 10


class DeviceError(AttnSurgeonError):
    """A device that does not exist here or does not support what was asked (e.g. --half on CPU)."""

    exit_code = 11


class ImageError(AttnSurgeonError):
    """An image file that is missing or that is not an image (cam)."""

    exit_code = 12


class MissingExtraError(AttnSurgeonError):
    """An optional dependency a command needs is not installed; the message gives the pip command."""

    exit_code = 13


def first_line(exc: BaseException, typed: bool = True) -> str:
    """An exception as one line for a message: ``"KeyError: 'Foo'"`` (``typed=False``: ``"'Foo'"``, for an error
    whose own message already says what it is), without Ultralytics' ``ERROR ❌`` prefix; the class name when the
    exception has no text. The one definition every room uses (errors imports nothing, so all of them can)."""
    text = str(exc).replace("ERROR ❌️", "").replace("ERROR ❌", "").strip()
    line = text.splitlines()[0].strip() if text else ""
    if not line:
        return exc.__class__.__name__
    return f"{exc.__class__.__name__}: {line}" if typed else line
