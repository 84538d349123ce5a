"""The one pipeline shared by every surgery: dry runs, paired writes, comparable costs, skipped is not passed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core import publish
from attnsurgeon.core.report import Check, SurgeryReport
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import OutputError
from attnsurgeon.ops import surgery as api

runner = CliRunner()


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_dry_run_writes_nothing_and_shows_the_diff(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.yaml").write_text("x: 1\n")
    before = _digest(tmp_path)
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--dry-run", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert _digest(tmp_path) == before
    lines = result.stdout.splitlines()
    assert "+++ yolo11n-SE.yaml" in lines
    assert "+  - [-1, 1, SE, [16]] # 9 SE (attnsurgeon)" in lines
    assert "-  - [[16, 19, 22], 1, Detect, [nc]] # Detect(P3, P4, P5)" in lines
    assert "+  - [[17, 20, 23], 1, Detect, [nc]] # Detect(P3, P4, P5)" in lines
    assert "dry run: nothing written (would write yolo11n-SE.yaml)" in result.stderr


def test_dry_run_diff_is_the_real_run(tmp_path):
    """Applying the dry run's diff to the input gives exactly the file the real run writes."""
    src = tmp_path / "yolov8n.yaml"
    src.write_text(model_doc.resolve_model_path("yolov8n.yaml")[0].read_text())
    dry = api.insert(src, "CBAM", [4, 6], verify=False, dry_run=True)
    assert not (tmp_path / "yolov8n-CBAM.yaml").exists()
    real = api.insert(src, "CBAM", [4, 6], verify=False)
    written = real.output.read_text()
    old = src.read_text().splitlines(True)
    patched, position = [], 0
    for line in dry.diff.splitlines(True)[2:]:
        if line.startswith("@@"):
            start = int(line.split()[1].split(",")[0].lstrip("-")) - 1
            patched += old[position:start]
            position = start
        elif line.startswith("-"):
            position += 1
        elif line.startswith("+"):
            patched.append(line[1:])
        else:
            patched.append(old[position])
            position += 1
    assert "".join(patched + old[position:]) == written


def test_dry_run_on_an_existing_output_warns_instead_of_failing(tmp_path):
    out = tmp_path / "yolo11n-SE.yaml"
    out.write_text("precious\n")
    report = api.insert("yolo11n.yaml", "SE", 8, output=out, verify=False, dry_run=True)
    assert out.read_text() == "precious\n"
    assert any("exists: the real run needs --force" in w for w in report.warnings)
    assert report.as_dict()["dry_run"] is True and report.as_dict()["diff"] == report.diff


@pytest.mark.parametrize("existing", [False, True])
def test_paired_write_is_all_or_none(tmp_path, monkeypatch, existing):
    """A .pt and its .yaml: if the second rename fails, the first is rolled back (old contents or no file)."""
    first, second = tmp_path / "best-SE.yaml", tmp_path / "best-SE.pt"
    if existing:
        first.write_text("old yaml\n")
        second.write_bytes(b"old pt")
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OutputError, match=r"best-SE\.pt: cannot be written \(No space left on device\); nothing was"):
        publish.publish_all([(first, "new yaml\n"), (second, b"new pt")], force=True)
    monkeypatch.setattr(os, "replace", real_replace)
    if existing:
        assert first.read_text() == "old yaml\n" and second.read_bytes() == b"old pt"
    else:
        assert not first.exists() and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (first, second) if existing)


def test_paired_write_replaces_both(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "a.pt"
    first.write_text("old\n")
    publish.publish_all([(first, "new\n"), (second, b"\x00\x01")], force=True)
    assert first.read_text() == "new\n" and second.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "a.yaml"]


def test_a_skipped_check_is_not_a_passed_one():
    report = SurgeryReport(None, Path("m.yaml"), "SE", [16], "all", [], [])
    assert not report.verified  # nothing ran
    report.checks = [Check("build", True), Check("train step", None, "skipped: WorldModel trains with text")]
    assert not report.verified
    assert report.as_dict()["skipped"] == ["train step"] and report.as_dict()["verified"] is False
    report.checks[1] = Check("train step", True)
    assert report.verified


def test_gflops_of_base_and_new_by_the_same_method(monkeypatch):
    """When Ultralytics' estimate fails for one model only, both are counted exactly, so the difference is exact."""
    import torch
    from ultralytics.utils import torch_utils

    from attnsurgeon.costs import flops

    base = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1))
    new = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 1))
    real = torch_utils.get_flops
    monkeypatch.setattr(torch_utils, "get_flops", lambda m, imgsz=640: 0.0 if m is new else real(m, imgsz))
    b, n = flops.comparable_gflops(base, new, 64)
    assert b.fallback and n.fallback
    assert b.value == pytest.approx(2 * 8 * 3 * 9 * 64 * 64 / 1e9)
    assert n.value - b.value == pytest.approx(2 * 8 * 8 * 64 * 64 / 1e9)


def test_checkpoint_dry_run_shows_the_layer_map_and_writes_nothing(tmp_path):
    from ultralytics import YOLO

    saved = tmp_path / "yolo11n-base.pt"
    YOLO("yolo11n.yaml").save(saved)
    before = _digest(tmp_path)
    report = api.insert(saved, "SE", 8, dry_run=True, verify=False)
    assert _digest(tmp_path) == before
    assert report.checks == []  # verify=False really skips verification on a checkpoint
    assert report.layer_map["fresh"] == [9] and report.layer_map["dropped"] == []
    assert report.layer_map["index_map"][8] == 8 and report.layer_map["index_map"][9] == 10
    assert report.output == tmp_path / "yolo11n-base-SE.pt"
    assert "+  - [-1, 1, SE, [16]] # 9" in report.diff.splitlines()
    result = runner.invoke(app, ["insert", str(saved), "-m", "SE", "-a", "8", "--dry-run", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "8→8" not in result.stdout and "9→10" in result.stdout and "23→24" in result.stdout
    assert "would write" in result.stderr and "yolo11n-base-SE.yaml" in result.stderr
    assert _digest(tmp_path) == before
