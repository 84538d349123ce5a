"""The Python API example of the site (docs/api.md) runs as written, in a fresh process (as a notebook would),
offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MARKER = "<!-- api-example -->"


def example_from(path: Path) -> str:
    """The first ```python block after the marker."""
    text = path.read_text(encoding="utf-8")
    if MARKER not in text:
        pytest.fail(f"{path.name} has no Python API example: a ```python block after {MARKER}")
    match = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert match, f"no ```python block follows {MARKER} in {path.name}"
    return match.group(1)


def test_api_example_runs(tmp_path):
    code = example_from(PAGE)
    assert "attnsurgeon.insert(" in code and "identity_init=True" in code
    env = {k: v for k, v in os.environ.items() if k not in ("ATTNSURGEON_AUTOLOAD", "ULTRALYTICS_SAFE_LOAD")}
    env.update(YOLO_OFFLINE="1", YOLO_VERBOSE="False", YOLO_CONFIG_DIR=str(tmp_path / ".ultralytics-config"))
    env.setdefault("OMP_NUM_THREADS", "1")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = {p.name for p in tmp_path.iterdir() if p.suffix in (".pt", ".yaml")}
    assert written == {"yolo11n-SE.yaml", "yolo11n-base.pt", "yolo11n-base-SE.pt", "yolo11n-base-SE.yaml"}
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("True ") and lines[-1] == "IdentityInit", result.stdout
    assert "('identity at init', True)" in result.stdout
