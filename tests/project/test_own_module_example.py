"""The "A module of your own" example of the site (docs/modules.md), run as written in a fresh directory (offline: the
training uses a tiny synthetic data set instead of coco8)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from test_interop import BIN, make_dataset, ok, run, train_overrides, yolo_cli_args

PAGE = Path(__file__).resolve().parents[2] / "docs" / "modules.md"


def block(marker: str, language: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    assert marker in text, f"docs/modules.md lost {marker}"
    match = re.search(rf"```{language}\n(.*?)```", text[text.index(marker) :], re.S)
    assert match, f"no ```{language} block follows {marker}"
    return match.group(1)


def commands() -> list[list[str]]:
    """The example's commands, comments dropped; the edit step is the line that starts with '# edit'."""
    out = []
    for line in block("<!-- own-module-example -->", "bash").splitlines():
        if line.startswith("# edit"):
            out.append(["EDIT"])
        elif line.strip():
            out.append(shlex.split(line.split("  #")[0]))
    return out


def test_the_example_is_the_five_commands_new_module_prints(tmp_path, clean_registry):
    """Its middle commands are exactly what new-module tells the user to run next."""
    from attnsurgeon.ops import scaffold as api

    steps = commands()
    assert [s[0] for s in steps] == ["attnsurgeon", "EDIT", "attnsurgeon", "python", "attnsurgeon", "yolo"]
    made = api.new_module(steps[0][2], tmp_path, steps[0][4])
    shown = [c.replace(f"{tmp_path}/", "") for c in made.next_commands()]
    assert [shlex.join(s) for s in steps[2:5]] == shown


@pytest.mark.slow
def test_own_module_example_runs(tmp_path):
    data = make_dataset(tmp_path / "data")
    for step in commands():
        if step == ["EDIT"]:
            module = next(p for p in tmp_path.glob("*.py") if not p.name.startswith("test_"))
            text = module.read_text()
            start = text.index("    def forward(")
            module.write_text(text[:start] + block("<!-- own-module-forward -->", "python"))
            continue
        if step[0] == "attnsurgeon":
            args = [str(BIN / "attnsurgeon"), *step[1:]]
        elif step[0] == "python":
            args = [sys.executable, *step[1:], "-q", "-p", "no:cacheprovider"]
        else:
            assert step[:2] == ["yolo", "train"] and step[2].startswith("model=")
            model = step[2].removeprefix("model=")
            args = [str(BIN / "yolo"), "train", *yolo_cli_args(model, train_overrides(data, tmp_path / "runs"))]
        ok(run(args, tmp_path, timeout=600))
    assert "amax" in (tmp_path / "mixed_pool_gate.py").read_text()  # the edited forward is what was trained
    weights = tmp_path / "runs" / "run" / "weights" / "last.pt"
    assert weights.is_file()
