"""The documentation stays true: every command and option of the CLI is on the site's pages, every block marked
``<!-- runnable -->`` runs as written, and the catalog page and the home page come from the code (docs/hooks.py).

A runnable block is a ```bash block right after a line ``<!-- runnable -->`` in README.md or docs/*.md; each line is one
command, run in a fresh folder in order. ``attnsurgeon`` lines run in the fast path; a block with a ``yolo train`` line
is also run whole in a slow test, training on a tiny synthetic data set instead of the one the line names.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest
from test_interop import BIN, make_dataset, ok, run, train_overrides, yolo_cli_args

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RUNNABLE = "<!-- runnable -->"


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def site_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in pages())


def runnable_blocks() -> dict[str, list[list[str]]]:
    """'file:line' -> the block's commands (comments dropped); a block repeated word for word is run once."""
    found: dict[str, list[list[str]]] = {}
    seen: set[str] = set()
    for path in [REPO / "README.md", *pages()]:
        text = path.read_text(encoding="utf-8")
        for marker in re.finditer(rf"^{re.escape(RUNNABLE)}$", text, re.M):
            match = re.match(r"\s*```bash\n(.*?)```", text[marker.end() :], re.S)
            assert match, f"{path.name}: {RUNNABLE} is not followed by a ```bash block"
            code = match.group(1)
            if code in seen:
                continue
            seen.add(code)
            lines = [shlex.split(line.split("  #")[0]) for line in code.splitlines() if line.strip()]
            found[f"{path.name}:{text[: marker.start()].count(chr(10)) + 1}"] = lines
    return found


def load_hooks() -> ModuleType:
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_and_option_is_on_the_site():
    """Walk the Typer app, as sqlite-utils tests its docs: each command as `attnsurgeon NAME`, each --flag."""
    import typer

    from attnsurgeon.cli import app

    cli = typer.main.get_command(app)
    text = site_text()
    missing = []
    for name, command in cli.commands.items():
        if f"attnsurgeon {name}" not in text:
            missing.append(f"attnsurgeon {name}")
        for param in command.params:
            missing += [f"{name} {flag}" for flag in param.opts if flag.startswith("--") and flag not in text]
    top = [flag for p in cli.params for flag in p.opts if flag.startswith("--")]  # --version, --debug, completion
    missing += [f"attnsurgeon {flag}" for flag in top if flag not in text]
    assert not missing, f"not documented in docs/*.md: {missing}"


def test_the_first_screen_of_readme_inserts_cbam_after_every_c3k2_and_trains_it():
    first_screen = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    assert "attnsurgeon insert yolo11n.yaml -m CBAM --after every:C3k2" in first_screen
    assert "yolo train model=yolo11n-CBAM.yaml" in first_screen


def test_readme_is_a_first_read():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README has {len(lines)} lines; the manual is the site in docs/"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = re.findall(r"^  - [^:]+: (\S+\.md)$", (REPO / "mkdocs.yml").read_text(), re.M)
    assert sorted(nav) == sorted(p.name for p in pages())


@pytest.mark.parametrize("where", list(runnable_blocks()))
def test_runnable_block_commands(where, tmp_path):
    steps = runnable_blocks()[where]
    assert steps and all(s[0] in ("attnsurgeon", "yolo") for s in steps), steps
    for step in steps:
        if step[0] == "attnsurgeon":
            ok(run([str(BIN / "attnsurgeon"), *step[1:]], tmp_path, timeout=600))
        else:
            assert step[:2] == ["yolo", "train"] and step[2].startswith("model="), step
            assert (tmp_path / step[2].removeprefix("model=")).is_file(), f"{where}: {step[2]} was not written"


@pytest.mark.slow
@pytest.mark.parametrize("where", [w for w, s in runnable_blocks().items() if any(c[0] == "yolo" for c in s)])
def test_runnable_block_trains(where, tmp_path):
    data = make_dataset(tmp_path / "data")
    for step in runnable_blocks()[where]:
        if step[0] == "attnsurgeon":
            ok(run([str(BIN / "attnsurgeon"), *step[1:]], tmp_path, timeout=600))
            continue
        model = step[2].removeprefix("model=")
        args = [str(BIN / "yolo"), "train", *yolo_cli_args(model, train_overrides(data, tmp_path / "runs"))]
        ok(run(args, tmp_path, timeout=900))
    assert (tmp_path / "runs" / "run" / "weights" / "last.pt").is_file()


def test_catalog_page_is_generated_from_the_registry():
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.cli.catalog_cmds import markdown_table
    from attnsurgeon.costs.modules import reference_costs

    hooks = load_hooks()
    page = (DOCS / "catalog.md").read_text(encoding="utf-8")
    assert hooks.CATALOG_MARKER in page and "| CBAM |" not in page  # the table is made at build time, not kept
    made = hooks.catalog_markdown()
    specs = REGISTRY.specs()
    assert markdown_table(specs, reference_costs(specs)) in made
    for spec in specs:
        assert f"\n### {spec.name}\n" in made and spec.link in made and spec.yaml_line() in made
        assert all(d in made for d in spec.deviations), spec.name


def test_home_page_is_the_readme():
    hooks = load_hooks()
    assert hooks.README_MARKER in (DOCS / "index.md").read_text(encoding="utf-8")
    home = hooks.readme_for_site()
    for link in re.findall(r"\]\(([^)#]+\.md)", home):
        assert (DOCS / link).is_file(), f"README links to docs/{link}, which does not exist"
