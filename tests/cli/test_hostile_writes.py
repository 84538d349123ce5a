"""An output is never overwritten without --force, not even one that appeared while the model was verified.

Each hostile case runs a real command line; while it works (after the early existence check, before the write) a file
appears at one of its outputs, as a second run writing the same default name would make it. The command must stop
with one line naming that file and --force, leave the file byte for byte, write nothing else (half a pair it wrote is
taken back) and leave no temporary file. Some cases run on a filesystem without hard links (``os.link`` raising
EPERM, as vfat/exFAT and some SMB/FUSE mounts do), where publishing claims the name with ``O_CREAT | O_EXCL``.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core import publish
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import OutputError

runner = CliRunner()
THEIRS = b"# written by another run meanwhile\n"
VERIFY = "attnsurgeon.checks.verify:check_new_model"


@dataclass(frozen=True)
class Hostile:
    name: str
    args: tuple[str, ...]  # the command line, run in a folder holding yolo11n.yaml, yolo11n.pt, img.png, forked.yaml
    appears: str  # the output that appears meanwhile
    during: str  # "module:function": the file appears while this runs
    no_links: bool = False  # a filesystem without hard links
    symlink: bool = False  # what appears is a dangling symbolic link (publishing must not write through it)
    says: str = "--force"


CASES = [
    Hostile("insert-verify", ("insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--imgsz", "64"), "yolo11n-SE.yaml",
            VERIFY),
    Hostile("insert-no-verify", ("insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"), "yolo11n-SE.yaml",
            "attnsurgeon.core.yamlfile.text_writer:surgery_text"),
    Hostile("insert-no-hard-links", ("insert", "yolo11n.yaml", "-m", "ECA", "-a", "4", "--imgsz", "64"),
            "yolo11n-ECA.yaml", VERIFY, no_links=True),
    Hostile("insert-dangling-symlink", ("insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"),
            "yolo11n-SE.yaml", "attnsurgeon.core.yamlfile.text_writer:surgery_text", symlink=True),
    Hostile("insert-dangling-symlink-no-hard-links", ("insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"),
            "yolo11n-SE.yaml", "attnsurgeon.core.yamlfile.text_writer:surgery_text", no_links=True, symlink=True),
    Hostile("augment-o", ("augment", "yolo11n.yaml", "-m", "EMA", "--at", "2", "--args", "[8]", "-o",
                          "yolo11n-ema.yaml", "--imgsz", "64"), "yolo11n-ema.yaml", VERIFY),
    # a checkpoint's pair: the .yaml is published first, so its appearing stops everything ...
    Hostile("checkpoint-yaml", ("insert", "yolo11n.pt", "-m", "SE", "-a", "8", "--imgsz", "64"), "yolo11n-SE.yaml",
            VERIFY),
    # ... and the .pt appearing after the .yaml was published takes our .yaml back
    Hostile("checkpoint-pt", ("insert", "yolo11n.pt", "-m", "SE", "-a", "8", "--imgsz", "64"), "yolo11n-SE.pt",
            VERIFY),
    Hostile("checkpoint-pt-no-hard-links", ("insert", "yolo11n.pt", "-m", "SE", "-a", "8", "--imgsz", "64"),
            "yolo11n-SE.pt", VERIFY, no_links=True),
    Hostile("adopt", ("adopt", "forked.yaml", "-o", "yolov8n-adopted.yaml", "--imgsz", "64"), "yolov8n-adopted.yaml",
            "attnsurgeon.checks.verify:check_model_file"),
    Hostile("show-plot", ("show", "yolo11n.yaml", "--plot", "yolo11n.svg"), "yolo11n.svg",
            "attnsurgeon.figures.diagram:render"),
    # cam's pictures are published all or none: grid.png comes last, so img.png (ours) is taken back
    Hostile("cam", ("cam", "yolo11n.pt", "yolo11n.pt", "img.png", "-o", "cams", "--imgsz", "64", "--method",
                    "eigencam"), "cams/grid.png", "attnsurgeon.figures.cam:heat_maps"),
    Hostile("new-module", ("new-module", "HostileGate", "--dir", "mods"), "mods/test_hostile_gate.py",
            "attnsurgeon.ops.scaffold:render", says="new-module never overwrites"),
]  # fmt: skip


def hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """What every case may read: a YAML, a checkpoint saved by Ultralytics, an image, a forked-Ultralytics YAML."""
    import numpy as np
    from forked_yamls import CASES as FORKED
    from PIL import Image
    from ultralytics import YOLO

    from attnsurgeon.ultralytics_bridge import ultra

    folder = tmp_path_factory.mktemp("hostile-sources")
    shutil.copy(model_doc.packaged_models_dir() / "11" / "yolo11.yaml", folder / "yolo11n.yaml")
    ultra.register()
    with ultra.quiet():
        YOLO("yolo11n.yaml").save(folder / "yolo11n.pt")
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "img.png")
    (folder / "forked.yaml").write_text(FORKED[0].text)
    return folder


@pytest.fixture
def here(sources, tmp_path, monkeypatch):
    for path in sources.iterdir():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def no_hard_links(monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)


def appear_during(monkeypatch, during: str, target: Path, symlink: bool) -> None:
    """Wrap ``during`` so that ``target`` appears (once) while it runs, as another run would create it."""
    module_name, function = during.split(":")
    module = importlib.import_module(module_name)
    original = getattr(module, function)

    def meanwhile(*args, **kwargs):
        if not os.path.lexists(target):
            target.parent.mkdir(exist_ok=True)
            if symlink:
                target.symlink_to("elsewhere.yaml")
            else:
                target.write_bytes(THEIRS)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, function, meanwhile)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_file_that_appears_meanwhile_is_never_replaced(case: Hostile, here, monkeypatch):
    target = here / case.appears
    appear_during(monkeypatch, case.during, target, case.symlink)
    if case.no_links:
        no_hard_links(monkeypatch)
    before = hashes(here)
    result = runner.invoke(app, list(case.args))
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 8, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert str(Path(case.appears)) in lines[0] and case.says in lines[0], lines[0]
    if case.symlink:
        assert os.readlink(target) == "elsewhere.yaml" and not (here / "elsewhere.yaml").exists()
    else:
        assert target.read_bytes() == THEIRS
        before[case.appears] = hashlib.sha256(THEIRS).hexdigest()
    assert hashes(here) == before, "a file changed, or one was written beside the one that appeared"
    assert not [p for p in here.rglob("*") if p.name.endswith((".tmp", ".old"))]


# --------------------------------------------------------------------------------------------------------------------
# --force on a filesystem without hard links


def test_force_overwrites_without_hard_links(here, monkeypatch):
    """--force is a plain rename: it works where os.link does not, for one file and for a checkpoint's pair."""
    no_hard_links(monkeypatch)
    (here / "yolo11n-SE.yaml").write_bytes(THEIRS)
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify", "--force"])
    assert result.exit_code == 0, result.output
    assert "SE, [16]" in (here / "yolo11n-SE.yaml").read_text()
    (here / "yolo11n-SE.pt").write_bytes(THEIRS)
    result = runner.invoke(app, ["insert", "yolo11n.pt", "-m", "SE", "-a", "8", "--no-verify", "--force"])
    assert result.exit_code == 0, result.output
    assert (here / "yolo11n-SE.pt").read_bytes() != THEIRS and "SE" in (here / "yolo11n-SE.yaml").read_text()
    assert not [p for p in here.iterdir() if p.name.endswith((".tmp", ".old"))]


def test_without_hard_links_a_failed_pair_under_force_puts_the_old_contents_back(tmp_path, monkeypatch):
    """The backup --force keeps for a pair is a copy where hard links are missing, and it is restored."""
    first, second = tmp_path / "a.yaml", tmp_path / "a.pt"
    first.write_text("old yaml\n")
    no_hard_links(monkeypatch)
    real_replace = os.replace

    def second_fails(src, dst):
        if Path(dst) == second:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OutputError, match=r"a\.pt: cannot be written \(No space left on device\)"):
        publish.publish_all([(first, "new yaml\n"), (second, b"new pt")], force=True)
    assert first.read_text() == "old yaml\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]


def test_a_take_back_never_removes_a_file_it_did_not_create(tmp_path, monkeypatch):
    """Our first file is replaced by another run before the second fails: theirs is left where it is."""
    first, second = tmp_path / "a.yaml", tmp_path / "a.pt"
    real_link = os.link

    def theirs_replaces_ours(src, dst):
        if Path(dst) == second:
            first.unlink()
            first.write_bytes(THEIRS)
            raise OSError(errno.EIO, "Input/output error")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", theirs_replaces_ours)
    with pytest.raises(OutputError, match="Input/output error"):
        publish.publish_all([(first, "ours\n"), (second, b"ours")], force=False)
    assert first.read_bytes() == THEIRS and not second.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]
