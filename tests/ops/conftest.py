"""Fixtures of the operations' tests: their golden files (tests/golden/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def check_golden(*pairs: tuple[Path, str | bytes]) -> None:
    """Compare each output with its golden file; with ``ATTNSURGEON_UPDATE_GOLDEN`` set, write them all and skip.

    Updating must not pass: a test that writes its golden and compares it with itself cannot fail, so a run that
    updates says so (skipped) and the next plain run is the one that checks. Structural asserts belong before the call,
    so they run in both modes.
    """
    if os.environ.get("ATTNSURGEON_UPDATE_GOLDEN"):
        for path, actual in pairs:
            path.write_bytes(actual if isinstance(actual, bytes) else actual.encode())
        pytest.skip(f"ATTNSURGEON_UPDATE_GOLDEN: wrote {', '.join(p.name for p, _ in pairs)}")
    for path, actual in pairs:
        expected = path.read_bytes() if isinstance(actual, bytes) else path.read_text()
        assert actual == expected, f"{path.name} differs (ATTNSURGEON_UPDATE_GOLDEN=1 rewrites it)"


@pytest.fixture
def golden():
    """:func:`check_golden`, for a test that takes ``golden`` as an argument."""
    return check_golden
