"""`attnsurgeon sweep` without models: planning (variants, names, option errors), the results files, Pareto
fronts, tables and plots."""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(result, code: int, contains: str) -> str:
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert contains in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------------------------
# Planning (no torch)


def test_modules_all_and_category_follow_the_catalog():
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.sweeps.plan import parse_modules

    assert [s.name for s in parse_modules("all")] == REGISTRY.names()
    channel = [s.name for s in REGISTRY.specs() if s.category == "channel"]
    assert channel and [s.name for s in parse_modules("category:channel")] == channel
    assert [s.name for s in parse_modules("se,CBAM,SE")] == ["SE", "CBAM"]


def test_variant_names_are_systematic():
    from attnsurgeon.sweeps.plan import parse_args_grid, parse_at, parse_modules, plan

    specs = parse_modules("SE,CascadedGroupAttention")
    grid = parse_args_grid(["SE=[8]|[16]", "CascadedGroupAttention=[16, 4, 0.0, 7, [3, 3, 3, 3]]"], specs)
    names = [v.name for v in plan("yolo11n", specs, parse_at(["8", "4+6"]), "insert", grid)]
    assert names == [
        "yolo11n",
        "yolo11n-SE_8-after8",
        "yolo11n-SE_8-after4+6",
        "yolo11n-SE_16-after8",
        "yolo11n-SE_16-after4+6",
        "yolo11n-CascadedGroupAttention_16_4_0.0_7_3x3x3x3-after8",
        "yolo11n-CascadedGroupAttention_16_4_0.0_7_3x3x3x3-after4+6",
    ]
    named = plan("yolo11n", specs[:1], parse_at("sppf,p4+heads,every:C3k2"), "augment", {})
    assert [v.name for v in named[1:]] == ["yolo11n-SE-in-sppf", "yolo11n-SE-in-p4+heads", "yolo11n-SE-in-every-C3k2"]


@pytest.mark.parametrize(
    ("options", "code", "message"),
    [
        (["-m", "category:nope", "--at", "8"], 2, "no category 'nope'; use one of channel, spatial"),
        (["-m", "Nope", "--at", "8"], 5, "unknown module 'Nope'"),
        (["-m", "SE", "--at", "8", "--args-grid", "CBAM=[16]"], 2, "CBAM is not among --modules"),
        (["-m", "SE", "--at", "8", "--args-grid", "SE"], 2, 'write MODULE=ARGS|ARGS..., e.g. "SE=[8]|[16]"'),
        (["-m", "SE", "--at", "8", "--checks", "all"], 2, "--checks 'all': use one of layer, model"),
        (["-m", "SE", "--at", "8", "--ray", "local"], 2, "--ray runs training trials; add --train DATA.yaml"),
        (["-m", "SE", "--at", "8", "--weights", "x.pt"], 2, "--weights applies to training; add --train DATA.yaml"),
        (["-m", "SE", "--at", "8", "--train", "missing.yaml"], 3, "--train missing.yaml: no such dataset YAML"),
        (["-m", "SE", "--at", "8", "--scale", "all"], 2, "a sweep compares variants at one scale"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, options, code, message):
    result = run("sweep", "yolo11n.yaml", *options, "-o", tmp_path / "out")
    one_line_error(result, code, message)


def test_ray_missing_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "data.yaml").write_text("train: x\nval: x\nnames: {0: a}\n")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as where Ray is not installed
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    result = run("sweep", "yolo11n.yaml", "-m", "SE", "--at", "8", "--train", tmp_path / "data.yaml",
                 "--ray", "local", "-o", tmp_path / "out")  # fmt: skip
    one_line_error(result, 2, "--ray needs Ray Tune, which is not installed: pip install attnsurgeon[ray]")


def test_api_name_is_the_function_whatever_was_imported_first():
    import attnsurgeon.sweeps.runner  # the submodule imported first: it must not shadow the function
    from attnsurgeon.sweeps import runner as sweeper

    assert attnsurgeon.sweep is sweeper.sweep and callable(attnsurgeon.sweep)


# ---------------------------------------------------------------------------------------------------------------------
# Results files, Pareto fronts, tables and plots (no torch)


def test_store_rows_survive_reopen_and_csv_matches_json(tmp_path):
    from attnsurgeon.sweeps.store import COLUMNS, ResultsStore

    store = ResultsStore.open(tmp_path)
    store.put({"key": "a", "name": "m-SE-after8", "params": 5, "args": [16], "status": "ok"})
    store.put({"key": "b", "name": "m-CBAM-after8", "status": "failed", "reason": 'bad, "quoted"'})
    store.put({"key": "a", "name": "m-SE-after8", "params": 6, "args": [16], "status": "ok"})  # an update
    again = ResultsStore.open(tmp_path)
    assert [(r["name"], r["params"]) for r in again.rows()] == [("m-SE-after8", 6), ("m-CBAM-after8", None)]
    with (tmp_path / "results.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(COLUMNS)
    assert [(r["name"], r["params"], r["args"], r["reason"]) for r in table] == [
        ("m-SE-after8", "6", "[16]", ""),
        ("m-CBAM-after8", "", "", 'bad, "quoted"'),
    ]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_foreign_results_file_is_refused(tmp_path):
    (tmp_path / "results.json").write_text('{"something": "else"}')
    result = run("sweep", "yolo11n.yaml", "-m", "SE", "--at", "8", "-o", tmp_path)
    one_line_error(result, 8, "is not a results file of an attnsurgeon sweep")


def test_pareto_front_by_hand():
    from attnsurgeon.sweeps.store import pareto_front

    # (cost, quality): B is dominated by C (cheaper and better); E ties A on cost with lower quality.
    points = [(1.0, 0.30), (2.0, 0.31), (1.5, 0.35), (3.0, 0.40), (1.0, 0.20)]
    assert pareto_front(points) == {0, 2, 3}


def trained_rows():
    def row(name, op, gflops, latency, m):
        return {"key": name, "name": name, "op": op, "status": "ok", "params": 1, "gflops": gflops,
                "latency_ms": latency, "mAP50-95": m}  # fmt: skip

    return [
        row("m", "base", 1.0, 10.0, 0.30),
        row("m-SE-after8", "insert", 1.1, 10.5, 0.29),
        row("m-CBAM-after8", "insert", 1.2, 10.2, 0.36),
        row("m-EMA-after8", "insert", 1.5, 12.0, 0.40),
        {**row("m-GAM-after8", "insert", 1.0, 1.0, 0.9), "status": "failed"},  # failures are never plotted
    ]


def test_plot_data_labels_every_point_and_draws_the_front(tmp_path):
    from attnsurgeon.sweeps.plot import plot_data, render

    plots = {p.stem: p for p in plot_data(trained_rows())}
    assert set(plots) == {"cost_params", "cost_latency", "map_gflops", "map_latency"}
    labels = ["base", "SE-after8", "CBAM-after8", "EMA-after8"]
    for data in plots.values():
        assert [label for label, _, _ in data.points] == labels
    assert plots["map_gflops"].front == ["base", "CBAM-after8", "EMA-after8"]
    assert plots["map_latency"].front == ["base", "CBAM-after8", "EMA-after8"]
    assert plots["cost_params"].front == []
    path = tmp_path / "map.png"
    written = render(plots["map_gflops"], path)
    assert written == labels
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_marks_pareto_rows_and_puts_failures_last():
    from attnsurgeon.cli._sweep_view import failure_notes, table_cells

    header, cells = table_cells(trained_rows(), "mAP50-95", "gflops")
    assert header == ["variant", "params", "GFLOPs", "latency ms", "mAP50-95", "status"]
    assert [c[0] for c in cells] == ["★ m-EMA-after8", "★ m-CBAM-after8", "★ m (base)", "m-SE-after8", "m-GAM-after8"]
    assert cells[-1][-1] == "failed"
    assert failure_notes([{**trained_rows()[-1], "reason": "check 'build' failed: X"}]) == [
        "m-GAM-after8: check 'build' failed: X"
    ]
