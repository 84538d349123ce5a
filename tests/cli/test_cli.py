"""The CLI as a user meets it: exit codes, one-line errors without tracebacks, files never touched on error."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def model_file(tmp_path):
    from attnsurgeon.core.yamlfile import model_doc

    text = (model_doc.packaged_models_dir() / "11" / "yolo11.yaml").read_text()
    path = tmp_path / "yolo11n.yaml"
    path.write_text(text)
    return path


def assert_one_line_error(result, code: int | None = None, contains: str = ""):
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert contains in lines[0], lines[0]
    return lines[0]


def test_every_command_has_help():
    """Every command and every parameter explains itself in --help (tests/project/test_docs.py: and is on the site)."""
    import typer

    result = run("--help")
    assert result.exit_code == 0, result.output
    cli = typer.main.get_command(app)
    assert {"insert", "show", "list", "info", "profile"} <= set(cli.commands)
    for name, command in cli.commands.items():
        assert (command.help or "").strip(), f"command {name} has no help text"
        assert name in result.output, f"{name} is not listed by attnsurgeon --help"
        sub = run(name, "--help")
        assert sub.exit_code == 0, sub.output
        for param in command.params:
            if param.name == "help":
                continue
            assert (getattr(param, "help", None) or "").strip(), f"{name}: parameter {param.name} has no help text"
    for flag in ("--install-completion", "--show-completion"):
        assert flag in result.output, flag


def test_insert_no_verify_writes_next_to_input(model_file):
    before = digest(model_file)
    result = run("insert", model_file, "--module", "SE", "--after", "8", "--no-verify")
    assert result.exit_code == 0, result.output
    out = model_file.parent / "yolo11n-SE.yaml"
    assert out.is_file() and "- [-1, 1, SE, [16]] # 9 SE (attnsurgeon)" in out.read_text()
    assert digest(model_file) == before
    assert not list(model_file.parent.glob(".*.tmp"))  # the atomic write left nothing behind


def test_insert_refuses_to_overwrite_without_force(model_file):
    out = model_file.parent / "taken.yaml"
    out.write_text("precious\n")
    result = run("insert", model_file, "-m", "SE", "-a", "8", "--no-verify", "-o", out)
    assert_one_line_error(result, 8, "already exists; pass --force")
    assert out.read_text() == "precious\n"
    result = run("insert", model_file, "-m", "SE", "-a", "8", "--no-verify", "-o", out, "--force")
    assert result.exit_code == 0, result.output
    assert "SE" in out.read_text()


def test_output_in_missing_directory(model_file):
    result = run(
        "insert", model_file, "-m", "SE", "-a", "8", "--no-verify", "-o", model_file.parent / "nope" / "x.yaml"
    )
    assert_one_line_error(result, 8, "does not exist")


def test_output_may_not_be_the_input(model_file):
    before = digest(model_file)
    result = run("insert", model_file, "-m", "SE", "-a", "8", "--no-verify", "-o", model_file, "--force")
    assert_one_line_error(result, 8, "is the input file")
    assert digest(model_file) == before


@pytest.mark.parametrize(
    ("setup", "args", "code", "contains"),
    [
        (None, ["missing.yaml", "-m", "SE", "-a", "8"], 3, "no such file"),
        ("not: [valid", ["bad.yaml", "-m", "SE", "-a", "8"], 3, "not valid YAML"),
        ("nc: 80\n", ["bad.yaml", "-m", "SE", "-a", "8"], 3, "no 'backbone' and no 'head' section"),
        ("- 1\n- 2\n", ["bad.yaml", "-m", "SE", "-a", "8"], 3, "top level must be a mapping"),
        (
            "backbone:\n  - [-1, 1, Conv]\nhead: []\n",
            ["bad.yaml", "-m", "SE", "-a", "0"],
            3,
            "[from, repeats, module, args]",
        ),
        (
            "backbone:\n  - [-1, 1, Conv, [8, 3]]\n  - [5, 1, Conv, [8, 3]]\nhead: []\n",
            ["bad.yaml", "-m", "SE", "-a", "0"],
            3,
            "reads layer 5, which is not an earlier layer",
        ),
        ("MODEL", ["yolo11n.yaml", "-m", "HaloAtention", "-a", "8"], 5, "did you mean HaloAttention"),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "99"], 4, "outside the model, which has layers 0 to 23"),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "-2"], 4, "is negative"),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "23"], 4, "is the head (Detect)"),
        (
            "MODEL",
            ["yolo11n.yaml", "-m", "SE", "-a", "8", "--args", "[1, 2, 3]"],
            6,
            "signature: SE(reduction: int = 16)",
        ),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "8", "--args", "[fast]"], 6, "argument 'reduction' got 'fast'"),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "8", "--args", "[1, 2"], 6, "is not a YAML list"),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "8", "--scale", "q"], 2, "is not a scale"),
        ("MODEL", ["yolo11n.yaml", "-m", "SE", "-a", "8", "--rewire", "some"], 4, "--rewire must be 'all' or 'next'"),
    ],
)
def test_bad_input_is_one_line_and_touches_nothing(tmp_path, model_file, monkeypatch, setup, args, code, contains):
    monkeypatch.chdir(tmp_path)
    if setup not in (None, "MODEL"):
        (tmp_path / "bad.yaml").write_text(setup)
    before = {p: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    result = run("insert", *args, "--no-verify")
    assert_one_line_error(result, code, contains)
    after = {p: digest(p) for p in tmp_path.iterdir() if p.is_file()}
    assert after == before


def test_scale_the_yaml_lacks(tmp_path, monkeypatch):
    from attnsurgeon.core.yamlfile import model_doc

    text = (model_doc.packaged_models_dir() / "11" / "yolo11.yaml").read_text()
    text = re.sub(r"\n  x: \[.*\n", "\n", text)
    (tmp_path / "yolo11x.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    result = run("insert", "yolo11x.yaml", "-m", "SE", "-a", "8", "--no-verify")
    assert_one_line_error(result, 3, "asks for scale 'x', which the YAML lacks; it has n, s, m, l")
    result = run("insert", "yolo11x.yaml", "-m", "SE", "-a", "8", "--no-verify", "--scale", "x")
    assert_one_line_error(result, 3, "has no scale 'x'")


def test_name_that_loses_the_scale_letter_is_warned(model_file):
    small = model_file.with_name("yolo11s.yaml")
    small.write_text(model_file.read_text())
    result = run("insert", small, "-m", "SE", "-a", "8", "--no-verify", "-o", small.parent / "custom.yaml")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "custom.yaml has no scale letter in its name, so Ultralytics will build it at scale 'n', not 's'" in text
    result = run("insert", small, "-m", "SE", "-a", "8", "--no-verify", "-o", small.parent / "yolo11n-SE.yaml")
    assert "will build it at scale 'n', not 's'; name it yolo11s-SE.yaml" in " ".join(result.output.split())


def test_insert_json_no_verify(model_file):
    result = run("insert", model_file, "-m", "CBAM", "-a", "4", "-a", "6", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["inserted"] == [{"after": 4, "index": 5}, {"after": 6, "index": 8}]
    assert data["checks"] == [] and data["base"] is None
    detect = next(c for c in data["changed"] if c["module"] == "Detect")
    assert detect["from_old"] == [16, 19, 22] and detect["from_new"] == [18, 21, 24]


def test_show_json_yolo11n():
    result = run("show", "yolo11n.yaml", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    layers = data["layers"]
    assert data["scale"] == "n" and len(layers) == 24
    assert layers[8]["module"] == "C3k2" and layers[8]["out_channels"] == 256 and layers[8]["level"] == "P5/32"
    assert layers[16]["out_channels"] == 64 and layers[16]["stride"] == 8
    assert layers[12]["from"] == [-1, 6] and layers[12]["from_absolute"] == [11, 6]
    assert layers[0]["from_absolute"] == ["input"]
    assert sum(layer["params"] for layer in layers) == 2_624_080  # Ultralytics' own summary for yolo11n
    assert layers[23]["out_channels"] is None  # Detect's output is not a feature map


def test_show_table_keeps_brackets():
    """Rich reads [nc] or [input] as markup; the table must print them as written."""
    result = run("show", "yolo11n.yaml")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "[input]" in rows["0"] and "[nc]" in rows["23"] and "[16, 19, 22]" in rows["23"]


def test_show_no_build_is_the_yaml_view():
    result = run("show", "yolov8s.yaml", "--no-build", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["scale"] == "s" and data["layers"][-1]["module"] == "Detect" and data["layers"][-1]["params"] is None


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output.startswith("attnsurgeon ")


def test_texts_cite_public_sources_only():
    """Code, docs and benchmarks name the public paper, project or tutorial, never private notes or their numbers."""
    root = README.parent
    files = [README, *root.glob("docs/**/*.md"), *root.glob("attnsurgeon/**/*.py"), *root.glob("benchmarks/*.py")]
    private = re.compile(r"seeds? ?\d{3}|seed documents?|DESIGN\.md|shared/seeds", re.IGNORECASE)
    found = [f"{p.relative_to(root)}: {m.group(0)}" for p in files for m in private.finditer(p.read_text())]
    assert not found, found
