"""MkDocs hooks: what the site shows that must come from the code, made at build time, never committed.

- The home page: ``<!-- readme -->`` becomes README.md, so the README holds nothing the site does not.
- The catalog page: ``<!-- catalog-table -->`` becomes one table and one section per module, generated from
  ``attnsurgeon.catalog.REGISTRY.specs()`` (paper, venue, year, args, constraints, deviations) and the cost each
  module has at C=256, 20x20 (``attnsurgeon.costs.modules.reference_costs``, cached as ``list`` caches it).
- Figures from real runs of the CLI, in a fresh folder under ``build/docs-figures`` (``build/`` is ignored by git):
  a ``show --plot`` diagram, a ``cam`` panel on Ultralytics' own ``bus.jpg``, a cost-only ``sweep``'s plots and its
  ``--markdown`` table (``<!-- sweep-table -->`` on the sweep page). ``mkdocs build`` always makes them afresh;
  ``mkdocs serve`` reuses them when they are there (delete the folder to remake them).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "build" / "docs-figures"
CATALOG_MARKER = "<!-- catalog-table -->"
SWEEP_MARKER = "<!-- sweep-table -->"
README_MARKER = "<!-- readme -->"
# what each figure is made from: (folder, command after `attnsurgeon`), run in FIGURES; the first step runs alone
FIRST = ("insert", "yolo11n.yaml", "-m", "CBAM", "--after", "every:C3k2", "--no-verify")
_command = "build"


def bus_jpg() -> Path:
    """The image Ultralytics ships with its package (``ultralytics/assets/bus.jpg``), found without importing it."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise PluginError("the docs figures need ultralytics installed (pip install -e '.[docs]')")
    return Path(spec.origin).parent / "assets" / "bus.jpg"


def figure_steps() -> list[tuple[str, ...]]:
    """The runs that make the figures, each an attnsurgeon command line; they run side by side after FIRST."""
    return [
        ("show", "yolo11n-CBAM.yaml", "--plot", "diagram.svg", "--base", "yolo11n.yaml"),
        ("cam", "yolo11n.yaml", "yolo11n-CBAM.yaml", str(bus_jpg()), "-o", "cam", "--imgsz", "320", "--attention-map"),
        ("sweep", "yolo11n.yaml", "-m", "SE,CBAM", "--at", "8", "-o", "sweep", "--imgsz", "160", "--runs", "3"),
        ("sweep", "yolo11n.yaml", "-m", "SE,CBAM", "--at", "8", "-o", "sweep", "--imgsz", "160", "--markdown"),
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ, YOLO_OFFLINE="1", YOLO_VERBOSE="False", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _check(step: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        raise PluginError(f"docs figure: attnsurgeon {' '.join(step)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def make_figures(folder: Path) -> dict[str, str]:
    """Run the CLI as a user would; returns the captured text outputs the pages embed (the sweep table)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    cli = [sys.executable, "-m", "attnsurgeon"]
    run = {"cwd": folder, "env": _env(), "capture_output": True, "text": True}
    _check(FIRST, subprocess.run([*cli, *FIRST], **run, timeout=300))
    steps = figure_steps()
    # the two sweeps share a folder: the second (--markdown) reuses the first's rows, so it runs after it
    parallel, last = steps[:-1], steps[-1]
    procs = [
        (
            s,
            subprocess.Popen(
                [*cli, *s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder, env=run["env"]
            ),
        )
        for s in parallel
    ]
    for step, proc in procs:
        out, err = proc.communicate(timeout=600)
        _check(step, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    table = _check(last, subprocess.run([*cli, *last], **run, timeout=300))
    (folder / "sweep-table.md").write_text(table)
    print(f"INFO    -  docs figures made in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return {"sweep-table": table}


# the files the pages show, by their path on the site -> path under FIGURES
SHOWN = {
    "figures/diagram.svg": "diagram.svg",
    "figures/cam-bus.png": "cam/bus.png",
    "figures/sweep-cost-params.png": "sweep/plots/cost_params.png",
    "figures/sweep-cost-latency.png": "sweep/plots/cost_latency.png",
}


def on_startup(command: str, dirty: bool) -> None:
    global _command
    _command = command


def on_files(files: Files, config: Any) -> Files:
    fresh = _command != "serve" or not all((FIGURES / p).is_file() for p in (*SHOWN.values(), "sweep-table.md"))
    if fresh:
        make_figures(FIGURES)
    for uri, made in SHOWN.items():
        files.append(File.generated(config, uri, abs_src_path=str(FIGURES / made)))
    return files


def sweep_table() -> str:
    lines = (FIGURES / "sweep-table.md").read_text().splitlines()
    return "\n".join(line for line in lines if line.startswith("|")) + "\n"


def catalog_markdown() -> str:
    """The catalog page's generated part: the table ``attnsurgeon list --markdown`` prints, then each module."""
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.cli.catalog_cmds import describe_limits, markdown_table
    from attnsurgeon.costs.modules import reference_costs

    specs = REGISTRY.specs()
    costs = reference_costs(specs)
    parts = [f"{len(specs)} modules; params and GFLOPs at C=256, 20x20.\n", markdown_table(specs, costs)]
    for s in specs:
        parts.append(f"\n### {s.name}\n")
        aka = f" Also: {', '.join(f'`{a}`' for a in s.aliases)}." if s.aliases else ""
        parts.append(f"{s.category}. {s.summary}{aka}\n")
        parts.append(f"- paper: [{s.paper}]({s.link}), {s.venue} {s.year}")
        parts.append(
            f"- reference implementation: <{s.reference}>"
            if s.reference.startswith("http")
            else f"- reference implementation: {s.reference}"
        )
        for a in s.args:
            default = "required" if a.required else f"default `{a.default!r}`"
            limits = describe_limits(a)
            parts.append(f"- `{a.name}` ({default}{'; ' + limits if limits else ''}): {a.help}".rstrip(": "))
        parts.extend(f"- constraint: {c}" for c in s.constraints)
        parts.extend(f"- deviation from the reference: {d}" for d in s.deviations)
        parts.append(f"- YAML: `{s.yaml_line()}`")
    return "\n".join(parts) + "\n"


def readme_for_site() -> str:
    """README.md as the home page: its links into docs/ made relative to the site."""
    return (ROOT / "README.md").read_text(encoding="utf-8").replace("](docs/", "](")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if README_MARKER in markdown:
        markdown = markdown.replace(README_MARKER, readme_for_site())
    if CATALOG_MARKER in markdown:
        markdown = markdown.replace(CATALOG_MARKER, catalog_markdown())
    if SWEEP_MARKER in markdown:
        markdown = markdown.replace(SWEEP_MARKER, sweep_table())
    return markdown
