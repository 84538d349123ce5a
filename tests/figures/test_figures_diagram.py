"""show --plot: the diagram's nodes and edges are the layer graph (every packaged YAML, torch-free), the new layers
are the highlighted ones after insert, augment and replace, and the PNG/SVG files are written atomically."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core import graph as graph_mod
from attnsurgeon.core.augment_graph import augment
from attnsurgeon.core.graph import INPUT
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.figures.diagram import diagram, highlight_rows, plot_model
from attnsurgeon.figures.new_layers import attention_rows, correspondence, new_rows

runner = CliRunner()
PACKAGED = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_nodes_and_edges_are_the_layer_graph(path):
    doc = model_doc.load(path)
    g = doc.graph
    d = diagram(g, data=doc.plain(), scale=(doc.scales or [""])[0])
    assert [n.index for n in d.nodes] == list(range(len(g)))
    assert [n.module for n in d.nodes] == [r.module for r in g.rows]
    assert sorted(d.edges) == sorted((t, i) for i in range(len(g)) for t in g.absolute(i))
    assert all(s < t and (s >= 0 or s == INPUT) for s, t in d.edges)
    assert {n.role for n in d.nodes if g.rows[n.index].section == "backbone"} <= {"backbone"}
    assert d.nodes[-1].role == "head"
    assert not d.highlighted  # a packaged model has no attention rows of ours


def test_new_layers_after_insert_augment_and_replace():
    base = model_doc.load("yolo11n.yaml").graph
    ins = graph_mod.insert(base, [4, 8], "SE", [16])
    assert new_rows(base, ins.graph) == ins.fresh_layers == [5, 10]
    assert attention_rows(ins.graph) == [5, 10]
    _, place = correspondence(base, ins.graph)
    assert place[5] == 4 and place[10] == 8 and place[11] == 9 and place[len(ins.graph) - 1] == len(base) - 1
    rep = graph_mod.replace(ins.graph, [10], "ECA", [], shape_keeping={"SE"})
    assert new_rows(ins.graph, rep.graph) == [10] and correspondence(ins.graph, rep.graph)[1][10] == 10
    aug = augment(base, [2, 8], "EMA", [8])
    assert new_rows(base, aug.graph) == list(aug.augmented) == [2, 8]
    assert attention_rows(aug.graph) == [2, 8]
    assert highlight_rows(aug.graph, [0]) == [0, 2, 8]
    assert highlight_rows(ins.graph, base=base) == [5, 10]
    d = diagram(aug.graph, data=model_doc.load("yolo11n.yaml").plain(), scale="n", highlight=[2, 8])
    assert d.highlighted == [2, 8] and d.nodes[2].label == "C3k2+EMA" and d.nodes[2].channels == 64


def test_channels_and_strides_on_nodes():
    doc = model_doc.load("yolo11n.yaml")
    d = diagram(doc.graph, data=doc.plain(), scale="n")
    assert (d.nodes[0].channels, d.nodes[0].stride) == (16, 2)
    assert (d.nodes[9].label, d.nodes[9].channels, d.nodes[9].stride) == ("SPPF", 256, 32)
    assert d.nodes[9].text == "9 SPPF\nc256 P5/32"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_cli_plot_png_and_svg(tmp_path):
    src = tmp_path / "yolo11n-SE.yaml"
    r = runner.invoke(app, ["insert", "yolo11n.yaml", "--module", "SE", "--after", "8", "--no-verify", "-o", str(src)])
    assert r.exit_code == 0, r.output
    png = tmp_path / "m.png"
    r = runner.invoke(app, ["show", str(src), "--no-build", "--json", "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["plot"] == {"file": str(png), "highlighted": [9]}
    w, h = _png_size(png.read_bytes())
    assert w == 1100 and h > 600
    svg = tmp_path / "m.svg"
    r = runner.invoke(app, ["show", str(src), "--no-build", "--plot", str(svg), "--base", "yolo11n.yaml",
                            "--highlight", "0"])  # fmt: skip
    assert r.exit_code == 0, r.output
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "9 SE" in text and "<svg" in text
    r = runner.invoke(app, ["show", str(src), "--no-build", "--plot", str(png)])
    assert r.exit_code == 8 and "already exists; pass --force" in r.stderr
    before = png.read_bytes()
    assert runner.invoke(app, ["show", str(src), "--no-build", "--plot", str(png), "--force"]).exit_code == 0
    assert png.read_bytes() == before  # same input, same bytes (no timestamps in the file)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--plot", "{tmp}/m.jpg"], 2, "--plot {tmp}/m.jpg: the file name must end in .png or .svg"),
        (["--plot", "{tmp}/m.png", "--highlight", "99"], 2, "--highlight 99 is outside the model, which has layers 0"),
        (["--plot", "{tmp}/missing/m.png"], 8, "directory {tmp}/missing does not exist"),
    ],
)  # fmt: skip
def test_cli_plot_bad_input_writes_nothing(tmp_path, args, code, message):
    args = [a.format(tmp=tmp_path) for a in args]
    r = runner.invoke(app, ["show", "yolo11n.yaml", "--no-build", *args])
    assert r.exit_code == code, r.output
    assert message.format(tmp=tmp_path) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_largest_packaged_models_draw(tmp_path):
    for name in ("yolov8x-p6.yaml", "rtdetr-x.yaml", "yolo11x.yaml"):
        d = plot_model(name, tmp_path / f"{name}.png")
        w, h = _png_size((tmp_path / f"{name}.png").read_bytes())
        assert w == 1100 and h >= 62 * max(sum(n.role == r for n in d.nodes) for r in ("backbone", "neck"))


def test_plot_no_build_imports_no_torch(tmp_path):
    code = (
        "import sys; from attnsurgeon.cli import app; from typer.testing import CliRunner; "
        f"r = CliRunner().invoke(app, ['show', 'yolo11n.yaml', '--no-build', '--plot', r'{tmp_path / 'm.png'}']); "
        "assert r.exit_code == 0, r.output; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]  # matplotlib only where it draws
    code = "import sys; from attnsurgeon.cli import app; print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False"] * 2


def test_plot_of_a_checkpoint_draws_its_stored_architecture(tmp_path, one_thread):
    from ultralytics import YOLO

    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    ultra.register()
    with ultra.quiet():
        YOLO("yolo11n.yaml").save(tmp_path / "b.pt")
    api.insert_checkpoint(tmp_path / "b.pt", "CBAM", after=[4, 8], output=tmp_path / "v.pt", verify=False)
    drawn = plot_model(tmp_path / "v.pt", tmp_path / "v.svg")
    expected = model_doc.load("yolo11n.yaml").graph
    for k in (8, 4):  # what insert --after 4 --after 8 does to the YAML
        expected = graph_mod.insert(expected, k, "CBAM", []).graph
    assert [(n.index, n.module) for n in drawn.nodes] == [(i, r.module) for i, r in enumerate(expected.rows)]
    assert sorted(drawn.edges) == sorted((t, i) for i in range(len(expected)) for t in expected.absolute(i))
    r = runner.invoke(app, ["show", str(tmp_path / "v.pt"), "--plot", str(tmp_path / "v.png"), "--base",
                            str(tmp_path / "b.pt"), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["plot"] == {"file": str(tmp_path / "v.png"), "highlighted": [5, 10]}
    assert (tmp_path / "v.png").read_bytes().startswith(b"\x89PNG")
    r = runner.invoke(app, ["show", str(tmp_path / "v.pt")])
    assert r.exit_code == 2 and r.stderr.strip() == (
        f"error: {tmp_path / 'v.pt'}: show takes a checkpoint with --plot only (the drawing); give a YAML for the table"
    )
