"""``attnsurgeon list`` and ``attnsurgeon info``: the catalog, read without importing torch."""

from __future__ import annotations

import contextlib
from typing import Any

import typer

import attnsurgeon.cli._complete as _complete
from attnsurgeon.cli._common import console, emit_json, errors_to_exit, esc, fmt_int, with_plugins
from attnsurgeon.cli._tables import Col, Row, fit_table, left_out_note

# What a user types (name, category) and picks a module by stays whole at every width; the paper title is cut to
# the room left, and the args, then the paper, give way to `info` on a narrow terminal.
LIST_COLUMNS = (
    Col("name", key=True),
    Col("category", key=True),
    Col("paper", cut=True, drop=1),
    Col("year", "right", key=True),
    Col("args", drop=2),
    Col("params", "right", key=True),
    Col("GFLOPs", "right", key=True),
)


def register(app: typer.Typer) -> None:
    app.command("list", help="List the attention catalog: name, category, paper, year, args, cost at C=256, 20x20.")(
        list_modules
    )
    app.command("info", help="Everything about one module: paper, link, reference, args, constraints, deviations.")(
        info
    )


def spec_dict(spec: Any, cost: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "category": spec.category,
        "paper": spec.paper,
        "venue": spec.venue,
        "year": spec.year,
        "link": spec.link,
        "reference": spec.reference,
        "summary": spec.summary,
        "args": [
            {
                "name": a.name,
                "default": None if a.required else a.default,
                "required": a.required,
                "type": a.annotation,
                "help": a.help,
                **({"choices": list(a.choices)} if a.choices else {}),
                **({"range": dict(a.limits)} if a.limits else {}),
            }
            for a in spec.args
        ],
        "constraints": list(spec.constraints),
        "deviations": list(spec.deviations),
        "yaml": spec.yaml_line(),
        "params": cost.get("params") if cost else None,
        "gflops": round(cost["gflops"], 6) if cost else None,
    }


def short_paper(title: str, limit: int = 48) -> str:
    head = title.split(":")[0].strip()
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"


def describe_limits(arg: Any) -> str:
    from attnsurgeon.catalog.argcheck import describe_limits as describe

    return describe(arg)


def args_text(spec: Any) -> str:
    return ", ".join(a.name if a.required else f"{a.name}={a.default!r}" for a in spec.args) or "-"


def markdown_table(specs: list[Any], costs: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| module | category | paper | venue, year | args (defaults) | params | GFLOPs |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for s in specs:
        cost = costs.get(s.name)
        params = f"{cost['params']:,}" if cost else "-"
        gflops = f"{cost['gflops']:.4f}" if cost else "-"
        lines.append(
            f"| {s.name} | {s.category} | [{short_paper(s.paper)}]({s.link}) | {s.venue} {s.year} | "
            f"{args_text(s).replace('|', '/')} | {params} | {gflops} |"
        )
    return "\n".join(lines) + "\n"


@errors_to_exit
@with_plugins
def list_modules(
    category: str | None = typer.Option(
        None, "--category", "-c", autocompletion=_complete.categories, help="Only this category."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    no_cost: bool = typer.Option(False, "--no-cost", help="Skip the cost columns (never imports torch)."),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (the one in the README)."),
    source: str | None = typer.Option(
        None,
        "--source",
        help="timm or ultralytics: which of the library's classes pass the module contract and can be inserted as "
        "--module LIBRARY:Class (computed once per installed version, then cached).",
    ),
) -> None:
    if source is not None:
        return _list_source(source, as_json)
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.costs.modules import reference_costs

    specs = _in_category(REGISTRY.specs(), category)
    costs = {} if no_cost else reference_costs(specs)
    if as_json:
        emit_json([spec_dict(s, costs.get(s.name)) for s in specs])
    elif markdown:
        typer.echo(markdown_table(specs, costs), nl=False)
    else:
        _render_list(specs, costs)


def _in_category(specs: list[Any], category: str | None) -> list[Any]:
    """--category: its modules only (a name that is no category is a usage error)."""
    from attnsurgeon.catalog import CATEGORIES
    from attnsurgeon.errors import UsageError

    if category is None:
        return specs
    wanted = category.lower()
    if wanted not in CATEGORIES:
        raise UsageError(f"--category {category!r} is not a category; use one of: {', '.join(CATEGORIES)}")
    return [s for s in specs if s.category == wanted]


def _render_list(specs: list[Any], costs: dict[str, dict[str, Any]]) -> None:
    from attnsurgeon.costs.modules import REFERENCE_CHANNELS, REFERENCE_SIZE

    h, w = REFERENCE_SIZE
    out = console()
    rows = [
        Row(
            (
                esc(s.name),
                esc(s.category),
                esc(short_paper(s.paper, 60)),
                str(s.year),
                esc(args_text(s)),
                fmt_int(costs[s.name]["params"]) if s.name in costs else "-",
                f"{costs[s.name]['gflops']:.4f}" if s.name in costs else "-",
            )
        )
        for s in specs
    ]
    table, left_out = fit_table(
        out,
        LIST_COLUMNS,
        rows,
        title=f"{len(specs)} modules; cost at C={REFERENCE_CHANNELS}, {h}x{w}",
    )
    out.print(table)
    if left_out:
        out.print(f"[dim]{left_out_note(out, left_out, 'attnsurgeon info NAME has them')}[/]")


SOURCE_COLUMNS = (Col("module", key=True), Col("YAML name", key=True), Col("args", cut=True, drop=1))


def _list_source(library: str, as_json: bool) -> None:
    from attnsurgeon import sources
    from attnsurgeon.sources import libraries as scanned

    err = console(stderr=True)
    status = err.status(f"probing {library}'s classes (once per version)") if err.is_terminal and not as_json else None
    with status or contextlib.nullcontext():
        entries = scanned.scan(library, sources.reserved_names())
    if as_json:
        emit_json(entries)
        return
    passing = [e for e in entries if e["ok"]]
    out = console()
    rows = [Row((esc(e["source"]), esc(e["name"]), esc(e["args"] or "-"))) for e in passing]
    title = f"{len(passing)} of {library}'s classes pass the module contract; insert one with --module MODULE"
    table, left_out = fit_table(out, SOURCE_COLUMNS, rows, title=title)
    out.print(table)
    if left_out:
        out.print(f"[dim]{left_out_note(out, left_out, 'attnsurgeon info MODULE has them')}[/]")
    failed = len(entries) - len(passing)
    out.print(f"{failed} more take a channel argument but fail the contract; --json gives each one's reason")


@errors_to_exit
@with_plugins
def info(
    name: str = typer.Argument(..., autocompletion=_complete.modules, help="Module name or alias."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    from attnsurgeon import sources
    from attnsurgeon.costs.modules import reference_costs

    spec = sources.resolve(name)
    cost = reference_costs([spec]).get(spec.name)
    data = spec_dict(spec, cost)
    if as_json:
        emit_json(data)
        return
    out = console()
    out.print(f"[bold]{esc(spec.name)}[/] — {esc(spec.summary)}")
    if spec.aliases:
        out.print(f"aliases: {', '.join(spec.aliases)}")
    out.print(f"category: {spec.category}")
    if spec.category == "foreign":  # a plain nn.Module class as its authors wrote it (sources.adapter)
        out.print(esc(f"source: {spec.origin} (--module {spec.origin})"))
        out.print(esc(f"input channels go to: {', '.join((spec.channel_arg, *spec.same_as_input))}"))
    else:
        out.print(esc(f"paper: {spec.paper} ({spec.venue} {spec.year})"))
        out.print(f"link: {spec.link}")
        out.print(f"reference implementation: {spec.reference}")
    out.print("arguments (the YAML lists these; input channels are inferred):")
    if not spec.args:
        out.print("  (none)")
    for a in spec.args:
        choices = f" one of {list(a.choices)}." if a.choices else ""
        valid = f" (valid: {describe_limits(a)})" if a.limits else ""
        out.print(esc(f"  {a.render()}  {a.help}{choices}{valid}"))
    if spec.fork_args:
        order = ", ".join(spec.fork_args)
        out.print(esc(f"forked-Ultralytics YAMLs write [channels, {order}]; attnsurgeon adopt maps them"))
    if spec.constraints:
        out.print("constraints:")
        for c in spec.constraints:
            out.print(esc(f"  - {c}"))
    if spec.deviations:
        out.print("deviations from the reference:")
        for d in spec.deviations:
            out.print(esc(f"  - {d}"))
    if cost:
        out.print(f"cost at C=256, 20x20: {cost['params']:,} params, {cost['gflops']:.4f} GFLOPs")
    out.print(esc(f"YAML: {spec.yaml_line()}"))
