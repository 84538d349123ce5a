"""A corpus of bad inputs (tests/cli/corpus/ and a few made at run time): each is one line on stderr starting with
"error:", a non-zero exit code, no traceback, and every file that existed is byte-identical afterwards."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc

CORPUS = Path(__file__).parent / "corpus"
runner = CliRunner()


def hashes(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The corpus and a good model in an empty directory that is the working directory."""
    for path in CORPUS.iterdir():
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(model_doc.packaged_models_dir() / "11" / "yolo11.yaml", tmp_path / "yolo11n.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_refused(root: Path, args: list[str], code: int, contains: str) -> str:
    before = hashes(root)
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert contains in lines[0], lines[0]
    assert hashes(root) == before, "an existing file changed, or a file was written"
    return lines[0]


INSERT = ["-m", "SE", "-a", "0", "--no-verify"]
CASES = [
    # (command line, exit code, part of the message)
    (["insert", "malformed.yaml", *INSERT], 3, "malformed.yaml: not valid YAML at line 3"),
    (["insert", "tab_indent.yaml", *INSERT], 3, "not valid YAML at line 2"),
    (["insert", "billion_laughs.yaml", *INSERT], 3, "expands to more than 1,000,000 values through YAML aliases"),
    (["insert", "python_object.yaml", *INSERT], 3, "uses the YAML tag !!python/object/apply:os.system"),
    (["insert", "python_name.yaml", *INSERT], 3, "uses the YAML tag !!python/name:os.system"),
    (["insert", "custom_tag.yaml", *INSERT], 3, "uses the YAML tag !Model"),
    (["insert", "nul_byte.yaml", *INSERT], 3, "not valid YAML"),
    (["insert", "binary.yaml", *INSERT], 3, "binary.yaml: cannot be read as text (UnicodeDecodeError"),
    (["insert", "latin1.yaml", *INSERT], 3, "cannot be read as text"),
    (["insert", "empty.yaml", *INSERT], 3, "the top level must be a mapping"),
    (["insert", "comment_only.yaml", *INSERT], 3, "the top level must be a mapping"),
    (["insert", "scalar.yaml", *INSERT], 3, "the top level must be a mapping"),
    (["insert", "top_level_list.yaml", *INSERT], 3, "the top level must be a mapping"),
    (["insert", "no_head.yaml", *INSERT], 3, "no 'head' section"),
    (["insert", "backbone_mapping.yaml", *INSERT], 3, "'backbone' must be a list of [from, repeats, module, args]"),
    (["insert", "short_row.yaml", *INSERT], 3, "backbone row 0 (layer 0) must be [from, repeats, module, args]"),
    (["insert", "bool_from.yaml", *INSERT], 3, "'from' must be an int or a list of ints, got True"),
    (["insert", "empty_from.yaml", *INSERT], 3, "'from' must be an int or a list of ints, got []"),
    (["insert", "forward_reference.yaml", *INSERT], 3, "layer 1 reads layer 5, which is not an earlier layer"),
    (["insert", "zero_repeats.yaml", *INSERT], 3, "repeats must be a positive int, got 0"),
    (["insert", "numeric_module.yaml", *INSERT], 3, "module must be a name, got 42"),
    (["insert", "args_scalar.yaml", *INSERT], 3, "args must be a list, got 16"),
    (["insert", "duplicate_key.yaml", *INSERT], 3, 'found duplicate key "backbone"'),
    (["insert", "two_documents.yaml", *INSERT], 3, "but found another document"),
    (["insert", "deep_nesting.yaml", *INSERT], 3, "deep_nesting.yaml: not a model YAML: nested too deeply"),
    (["show", "deep_nesting.yaml", "--no-build"], 3, "nested too deeply"),
    (["show", "billion_laughs.yaml", "--no-build"], 3, "through YAML aliases"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "1" + "0" * 30, "--no-verify"], 4, "outside the model"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "4.5", "--no-verify"], 2, "'4.5' is not a layer index or a posi"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "", "--no-verify"], 2, "--after is empty; use a layer index or"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "8,,9", "--no-verify"], 2, "--after is empty"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "hed", "--no-verify"], 2, "did you mean heads"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "every:C3K2", "--no-verify"], 4, "did you mean every:C3k2"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "８", "--no-verify"], 2, "'８' is not a layer index"),
    (
        ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify", "--args", '!!python/object:os.system ["x"]'],
        6,
        "uses the YAML tag !!python/object:os.system",
    ),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify", "-o", "yolo11n.yaml"], 8, "is the input file"),
    (["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify", "-o", "nowhere/x.yaml"], 8, "does not exist"),
    (["insert", "modèle ü.yaml", *INSERT], 3, "modèle ü.yaml: no such file"),
    (["remove", "billion_laughs.yaml", "--at", "1", "--no-verify"], 3, "through YAML aliases"),
    (["replace", "python_object.yaml", "--at", "1", "-m", "SE", "--no-verify"], 3, "uses the YAML tag !!python"),
    (["remove", "binary.yaml", "--at", "1", "--dry-run"], 3, "cannot be read as text"),
    (["remove", "yolo11n.yaml", "--at", "99999999999999999999", "--no-verify"], 4, "outside the model"),
    (["remove", "yolo11n.yaml", "--at", "", "--no-verify"], 2, "--at is empty; use a layer index or one of"),
    (["replace", "yolo11n.yaml", "--at", "p9", "-m", "SE", "--no-verify"], 2, "'p9' is not a layer index"),
    (["insert", "not_a_checkpoint.pt", "-m", "SE", "-a", "0"], 10, "not_a_checkpoint.pt"),
    (["remove", "random_bytes.pt", "--at", "9", "--dry-run"], 10, "random_bytes.pt: cannot be read"),
    (["insert", "random_bytes.pt", "-m", "SE", "-a", "0"], 10, "random_bytes.pt"),
]


def test_the_corpus_has_at_least_25_files():
    assert len(list(CORPUS.iterdir())) >= 25


@pytest.mark.parametrize(("args", "code", "contains"), CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_input_is_refused_in_one_line(workdir, args, code, contains):
    assert_refused(workdir, args, code, contains)


def test_a_directory_as_model(workdir):
    (workdir / "model.yaml").mkdir()
    (workdir / "models").mkdir()
    assert_refused(workdir, ["insert", "model.yaml", *INSERT], 3, "model.yaml: is a directory, not a model YAML")
    assert_refused(workdir, ["insert", "models", *INSERT], 3, "models: not a YAML model file")
    assert_refused(workdir, ["show", "model.yaml", "--no-build"], 3, "is a directory")


def test_an_output_that_is_a_directory(workdir):
    (workdir / "out.yaml").mkdir()
    assert_refused(workdir, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify", "-o", "out.yaml"], 8, "")


def test_unicode_and_space_paths_work(workdir):
    folder = workdir / "mes modèles ü"
    folder.mkdir()
    shutil.copy(workdir / "yolo11n.yaml", folder / "yolo11n café.yaml")
    result = runner.invoke(app, ["insert", str(folder / "yolo11n café.yaml"), "-m", "SE", "-a", "p5", "--no-verify"])
    assert result.exit_code == 0, result.output
    written = folder / "yolo11n café-SE.yaml"
    assert model_doc.load(written).graph.rows[11].module == "SE"


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        # without --force the output is published by a no-clobber os.link (core/publish.py)
        ("os.link", PermissionError(errno.EACCES, "Permission denied"), "cannot be written (Permission denied)"),
        ("os.fsync", OSError(errno.ENOSPC, "No space left on device"), "cannot be written (No space left on device)"),
        ("tempfile.mkstemp", OSError(errno.EROFS, "Read-only file system"), "(Read-only file system)"),
    ],
)
def test_a_failing_write_is_one_line_and_leaves_nothing(workdir, monkeypatch, target, error, message):
    """A read-only directory or a full disk (root ignores chmod, so the failure is simulated where it would happen)."""
    import tempfile

    module, name = target.split(".")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr({"os": os, "tempfile": tempfile}[module], name, fail)
    line = assert_refused(workdir, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"], 8, message)
    assert "yolo11n-SE.yaml" in line and "nothing was written" in line
    assert not [p for p in workdir.iterdir() if p.name.endswith(".tmp")]


def test_an_interrupted_write_leaves_no_partial_output_and_the_input_intact(workdir, monkeypatch):
    """Interrupted between the temporary file and the rename: no output, no temporary file, the input unchanged."""
    before = hashes(workdir)
    seen: list[Path] = []

    def interrupted(src, dst):
        seen.append(Path(src))
        assert Path(src).read_bytes()  # the temporary file was complete
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", interrupted)  # the publish step without --force
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"])
    assert result.exit_code == 130, result.output
    assert result.output.strip() == "error: interrupted; nothing was written"
    assert seen and not seen[0].exists()
    assert hashes(workdir) == before
