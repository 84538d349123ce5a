"""Every table as a user reads it in a 80- and a 120-column terminal: names whole, key numbers there, nothing wider.

The CLI renders for ``COLUMNS`` when it is set (as a terminal of that width would); the tests set it and read the
text a user would see.
"""

from __future__ import annotations

import io
import json

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app

runner = CliRunner()
WIDTHS = (80, 120)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ATTNSURGEON_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "attnsurgeon-cache"))


def at_width(width: int, *args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    too_wide = [line for line in result.stdout.splitlines() if cell_len(line) > width]
    assert not too_wide, f"lines wider than {width} columns:\n" + "\n".join(too_wide)
    return result.stdout


def rows_by_first_word(text: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}


# --------------------------------------------------------------------------------------------------------------------
# list


@pytest.fixture(scope="module")
def catalog() -> list[dict]:
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("width", WIDTHS)
def test_list_names_whole_with_year_params_gflops(width, catalog):
    rows = rows_by_first_word(at_width(width, "list"))
    for module in catalog:
        words = rows.get(module["name"])
        assert words is not None, f"{module['name']} is not whole at the start of a row"
        assert str(module["year"]) in words
        # the cost columns end every row: params with thousands separators, GFLOPs to 4 decimals
        assert words[-2:] == [f"{module['params']:,}", f"{module['gflops']:.4f}"], words
    se = rows["SE"]
    assert se[-2:] == [f"{2 * 256 * 16:,}", "0.0000"] and "2018" in se  # SE at C=256: two 256x16 bias-free layers


def test_list_at_80_moves_paper_and_args_to_info():
    text = at_width(80, "list")
    header = text.splitlines()[1].split()
    assert header == ["name", "category", "year", "params", "GFLOPs"]
    assert text.rstrip().splitlines()[-1] == ("not shown at 80 columns: paper, args (attnsurgeon info NAME has them)")
    assert "convolutional attention" in text  # a category is typed to --category: never wrapped


def test_list_at_120_shows_the_paper_cut_to_one_line():
    text = at_width(120, "list")
    assert text.splitlines()[1].split() == ["name", "category", "paper", "year", "params", "GFLOPs"]
    rows = rows_by_first_word(text)
    assert "Coordinate Attention for" in " ".join(rows["CoordAtt"])
    assert len(text.splitlines()) == len(REGISTRY.names()) + 4  # title, header, rule, note: one line per module
    assert text.rstrip().endswith("not shown at 120 columns: args (attnsurgeon info NAME has them)")


def test_list_piped_without_columns_is_not_squeezed(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "args" in result.stdout.splitlines()[1] and "not shown" not in result.stdout


def test_output_width_rules(monkeypatch):
    import os
    import sys

    from attnsurgeon.cli._common import PIPED_WIDTH, output_width

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

        def fileno(self) -> int:
            return 2

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert output_width(io.StringIO()) == PIPED_WIDTH == 200  # no terminal anywhere
    assert output_width(Tty()) is None  # Rich asks the terminal
    monkeypatch.setattr(sys, "stderr", Tty())
    monkeypatch.setattr(os, "get_terminal_size", lambda fd: os.terminal_size((97, 30)))
    assert output_width(io.StringIO()) == 97  # piped to less: the width of the terminal stderr shows
    monkeypatch.setenv("COLUMNS", "93")
    assert output_width(io.StringIO()) == 93 and output_width(Tty()) == 93


# --------------------------------------------------------------------------------------------------------------------
# show


@pytest.fixture(scope="module")
def yolov8s_show(tmp_path_factory) -> tuple[dict, dict[int, str]]:
    """`show yolov8s.yaml` built once: its JSON and its table at both widths (api.show is replayed, not rebuilt)."""
    from attnsurgeon.ops import show as api

    shown = api.show("yolov8s.yaml")
    data = json.loads(runner.invoke(app, ["show", "yolov8s.yaml", "--no-build", "--json"]).output)
    tables = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "show", lambda *args, **kwargs: shown)
        for width in WIDTHS:
            tables[width] = at_width(width, "show", "yolov8s.yaml")
    return data, tables


@pytest.mark.parametrize("width", WIDTHS)
def test_show_rows_whole(width, yolov8s_show):
    _, tables = yolov8s_show
    rows = rows_by_first_word(tables[width])
    # Conv(3, 32, k=3, s=2) + BatchNorm: 3 * 32 * 9 + 2 * 32 = 928 params, 32 channels at stride 2
    assert rows["0"][-7:] == ["Conv", "[64,", "3,", "2]", "32", "P1/2", "928"]
    assert rows["4"][-8:] == ["2", "(6)", "C2f", "[256,", "True]", "128", "P3/8", "197,632"]  # 2 at scale s, 6 written
    assert "nn.Upsample" in rows["10"] and rows["10"][-3:] == ["512", "P4/16", "0"]
    assert rows["22"][-5:] == ["Detect", "[nc]", "-", "-", "2,147,008"] and "[15," in rows["22"]


def test_show_at_80_leaves_out_the_from_as_written(yolov8s_show):
    _, tables = yolov8s_show
    lines = tables[80].splitlines()
    assert lines[1].split() == ["idx", "reads", "n", "module", "args", "out-ch", "stride", "params"]
    notes = [line.rstrip() for line in lines if not line.startswith(" ")]  # the lines under the table
    assert "n: repeats at scale s; the YAML's value in brackets where it differs" in notes
    assert "not shown at 80 columns: from (--json has it)" in notes
    lines = tables[120].splitlines()
    assert lines[1].split() == ["idx", "from", "reads", "n", "module", "args", "out-ch", "stride", "params"]
    assert "[None, 2, nearest]" in tables[120]


def test_show_repeats_at_scale_in_json(yolov8s_show):
    data, _ = yolov8s_show
    layers = data["layers"]
    # yolov8.yaml writes C2f with 3 and 6 repeats; scale s has depth 0.33: round(3 * 0.33) = 1, round(6 * 0.33) = 2
    assert [(row["repeats"], row["repeats_at_scale"]) for row in layers if row["module"] == "C2f"] == [
        (3, 1),
        (6, 2),
        (6, 2),
        (3, 1),
        (3, 1),
        (3, 1),
        (3, 1),
        (3, 1),
    ]
    assert all(row["repeats_at_scale"] == 1 for row in layers if row["repeats"] == 1)


def test_repeats_at_scale_as_ultralytics_builds_them(tmp_path):
    """Pins the depth gain of parse_model: a row's built repeats, for a module Ultralytics repeats itself (C2f's
    bottlenecks) and for one it wraps in nn.Sequential (Conv), with scales and with depth_multiple."""
    from torch import nn

    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.ultralytics_bridge import ultra

    text = (
        "nc: 2\n{depth}\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\n  - [-1, 3, Conv, [16, 3]]\n"
        "  - [-1, 6, C2f, [16]]\n  - [-1, 2, C2f, [16]]\nhead:\n  - [-1, 1, Classify, [nc]]\n"
    )
    for depth_line, scale, depth in (
        ("depth_multiple: 0.67", "", 0.67),
        ("scales:\n  n: [0.33, 0.25, 1024]\n  m: [0.5, 1.0, 512]", "n", 0.33),
        ("scales:\n  n: [0.33, 0.25, 1024]\n  m: [0.5, 1.0, 512]", "m", 0.5),
    ):
        path = tmp_path / f"cls{scale}.yaml"
        path.write_text(text.format(depth=depth_line))
        doc = model_doc.load(path)
        assert ultra.depth_gain(doc.data, scale) == depth
        model = ultra.build_model(doc.plain(), scale or None, path.name)
        for index, row in enumerate(doc.graph.rows[:-1]):
            layer = model.model[index]
            built = len(layer.m) if hasattr(layer, "m") else len(layer) if isinstance(layer, nn.Sequential) else 1
            assert built == ultra.scaled_repeats(row.repeats, depth), (depth_line, index)


# --------------------------------------------------------------------------------------------------------------------
# insert report and profile


@pytest.fixture(scope="module")
def insert_report(tmp_path_factory):
    """A verified insertion of the longest module name, once; the CLI renders the same report at each width."""
    from attnsurgeon.ops import surgery as api

    out = tmp_path_factory.mktemp("insert") / "yolo11n-BiLevelRoutingAttention.yaml"
    return api.insert("yolo11n.yaml", "BiLevelRoutingAttention", after=[4, 6, 8], output=out, imgsz=64)


@pytest.mark.parametrize("width", WIDTHS)
def test_insert_report_fits(width, insert_report, monkeypatch):
    from attnsurgeon.ops import surgery as api

    monkeypatch.setattr(api, "insert", lambda *args, **kwargs: insert_report)
    text = at_width(width, "insert", "yolo11n.yaml", "-m", "BiLevelRoutingAttention", "-a", "4", "-a", "6", "-a", "8")
    rows = rows_by_first_word(text)
    assert rows["26"][:2] == ["26", "Detect"] and "25]" in rows["26"]  # the Detect inputs, moved by three
    base, new = insert_report.costs["n"]
    assert rows["n"] == ["n", "base", f"{base.params:,}", f"{base.gflops:.2f}"]
    assert rows["new"] == ["new", f"{new.params:,}", f"{new.gflops:.2f}"]
    assert f"+{new.params - base.params:,}" in rows["Δ"]
    checks = [line.split()[1:3] for line in text.splitlines() if line.startswith("✓")]
    assert ["build", "27"] in checks and len(checks) == len(insert_report.checks)


@pytest.fixture(scope="module")
def profile_reports(tmp_path_factory):
    from attnsurgeon.ops import profile
    from attnsurgeon.ops import surgery as api

    path = tmp_path_factory.mktemp("profile") / "yolo11n-BiLevelRoutingAttention.yaml"
    api.insert("yolo11n.yaml", "BiLevelRoutingAttention", after=8, output=path, verify=False)
    return profile.profile([str(path), "yolo11n.yaml"], imgsz=64, runs=2, warmup=0, layers=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_profile_compare_and_layers_fit(width, profile_reports, monkeypatch):
    from attnsurgeon.ops import profile

    monkeypatch.setattr(profile, "profile", lambda *args, **kwargs: profile_reports)
    new, base = profile_reports
    text = at_width(width, "profile", "x.yaml", "--compare", "yolo11n.yaml", "--layers")
    lines = [line.rstrip() for line in text.splitlines()]
    assert "yolo11n-BiLevelRoutingAttention (new) vs yolo11n (base)" in lines
    rows = {line[:22].strip(): line[22:].split() for line in lines if line[:22].strip()}
    assert rows["params"][:3] == [f"{base.params:,}", f"{new.params:,}", f"+{new.params - base.params:,}"]
    assert rows["GFLOPs (Ultralytics)"][:2] == [f"{base.gflops.value:.2f}", f"{new.gflops.value:.2f}"]
    assert rows["peak memory (MiB)"] == ["-", "(CUDA", "only)", "-", "(CUDA", "only)"]
    layer_rows = rows_by_first_word(text)
    assert layer_rows["9"][1:4] == ["★", "BiLevelRoutingAttention", f"{new.layers[9].params:,}"]
    assert layer_rows["24"][1] == "Detect"


def test_profile_single_model_fits(profile_reports, monkeypatch):
    from attnsurgeon.ops import profile

    monkeypatch.setattr(profile, "profile", lambda *args, **kwargs: profile_reports[1:])
    text = at_width(80, "profile", "yolo11n.yaml")
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert rows["params"][-1] == f"{profile_reports[1].params:,}"
    assert text.splitlines()[2].split() == ["yolo11n"]  # the header names the model


def test_show_no_build_leaves_out_the_built_columns():
    text = at_width(80, "show", "yolov8s.yaml", "--no-build")
    assert text.splitlines()[1].split() == ["idx", "from", "reads", "n", "module", "args"]
    assert rows_by_first_word(text)["4"] == ["4", "-1", "[3]", "2", "(6)", "C2f", "[256,", "True]"]


@pytest.mark.parametrize("width", [80, 120])
def test_adopt_report_wraps_under_its_indent(width, tmp_path, monkeypatch):
    from forked_yamls import CASES

    monkeypatch.chdir(tmp_path)
    case = next(c for c in CASES if c.name == "yolov8n-partial-renumbering")
    case.write(tmp_path)
    lines = at_width(width, "adopt", f"{case.name}.yaml", "--no-verify", "--dry-run").splitlines()
    report = lines[: next(i for i, line in enumerate(lines) if line.startswith("---"))]  # the diff follows
    section = ""
    for line in report[1:]:
        if not line.startswith(" "):
            assert line in ("changed:", "cannot map:", "diagnosis:"), f"a wrapped line lost its indent: {line!r}"
            section = line
            continue
        # every line of a change's reason, wrapped or not, sits under it; a finding's continuation under its text
        assert line.startswith("  ") and (section != "changed:" or line.startswith(("  layer ", "    "))), line
    text = " ".join(line.strip() for line in report)
    assert "channel count [1024] dropped (attnsurgeon infers input channels); default reduction, kernel_size" in text
    assert "write 13" in text
