"""attnsurgeon remove / replace / --dry-run as a user runs them: YAMLs and checkpoints, verification, reports, files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ops import surgery as api

runner = CliRunner()
YOLO11 = model_doc.packaged_models_dir() / "11" / "yolo11.yaml"


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def with_se(tmp_path, monkeypatch) -> Path:
    """yolo11n with SE after 8 (layer 9) and after the P3 head input 16 (layer 18), written by insert."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolo11n.yaml").write_text(YOLO11.read_text())
    result = run("insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "-a", "16", "--no-verify")
    assert result.exit_code == 0, result.output
    return tmp_path / "yolo11n-SE.yaml"


def one_line_error(result, code: int, contains: str) -> None:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0], result.output


def test_remove_gives_back_the_file_insert_started_from(with_se):
    result = run("remove", with_se, "--at", "9", "--at", "18", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "removed layers 9, 18 of yolo11n-SE.yaml" in result.output
    out = with_se.parent / "yolo11n-SE-no9+18.yaml"
    assert out.read_text() == YOLO11.read_text()
    # by name: the SE layers are every:SE, and the SE at 18 is one of the head inputs
    result = run("remove", with_se, "--at", "every:SE", "--no-verify", "-o", "by-name.yaml")
    assert result.exit_code == 0, result.output
    assert "positions: every:SE = 9, 18" in result.output
    assert (with_se.parent / "by-name.yaml").read_text() == YOLO11.read_text()


def test_remove_json_reports_what_moved(with_se):
    result = run("remove", with_se, "--at", "heads", "--no-verify", "--json", "-o", "x.yaml")
    one_line_error(result, 4, "--at 21 is C3k2, which may change channels or stride")  # heads: 18 (SE), 21, 24
    result = run("remove", with_se, "--at", "18", "--no-verify", "--json")
    data = json.loads(result.output)
    assert data["operation"] == "remove" and data["removed"] == [18] and data["inserted"] == []
    assert data["output"].endswith("yolo11n-SE-no18.yaml")
    detect = next(c for c in data["changed"] if c["module"] == "Detect")
    assert detect["from_old"] == [18, 21, 24] and detect["from_new"] == [17, 20, 23]


def test_replace_swaps_one_row_and_moves_no_reference(with_se):
    result = run("replace", with_se, "--at", "9", "-m", "CBAM", "--args", "[7]", "--no-verify")
    assert result.exit_code == 0, result.output
    # [7] alone reads as kernel_size=7 in forked YAMLs (Ultralytics' CBAM(c1, kernel_size)): written in full
    assert "layer 9 now CBAM [7, 7]" in result.output
    out = with_se.parent / "yolo11n-SE-CBAM.yaml"
    assert out.read_text() == with_se.read_text().replace(
        "  - [-1, 1, SE, [16]] # 9 SE (attnsurgeon)\n", "  - [-1, 1, CBAM, [7, 7]] # 9 CBAM (attnsurgeon)\n"
    )
    data = json.loads(run("replace", with_se, "--at", "every:SE", "-m", "ECA", "--no-verify", "--json").output)
    assert data["replaced"] == [9, 18] and data["changed"] == [] and data["positions"] == {"every:SE": [9, 18]}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["remove", "yolo11n-SE.yaml", "--at", "4"], 4, "--at 4 is C3k2, which may change channels or stride"),
        (["remove", "yolo11n-SE.yaml", "--at", "13"], 4, "--at 13 is Concat, which reads 2 layers"),
        (["remove", "yolo11n-SE.yaml", "--at", "25"], 4, "--at 25 is the head (Detect), the last layer"),
        (["remove", "yolo11n-SE.yaml", "--at", "sppff"], 2, "did you mean sppf? use an index or one of: heads"),
        (["remove", "yolo11n-SE.yaml", "--at", "every:CBAM"], 4, "--at every:CBAM: no layer is CBAM; modules: C2PSA"),
        (["replace", "yolo11n-SE.yaml", "--at", "9", "-m", "SEE"], 5, "SEE"),
        (["replace", "yolo11n-SE.yaml", "--at", "9", "-m", "SE", "--args", "[a]"], 6, "argument 'reduction' got 'a'"),
        (["replace", "yolo11n-SE.yaml", "--at", "10", "-m", "SE"], 4, "--at 10 is SPPF, which may change channels"),
        (["replace", "yolo11n-SE.yaml", "--at", "9", "-m", "SE", "-o", "yolo11n-SE.yaml"], 8, "is the input file"),
        (["remove", "yolo11n-SE.yaml", "--at", "9", "-o", "x.txt"], 2, "the output must be a .yaml file"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(with_se, args, code, message):
    before = {p: digest(p) for p in with_se.parent.iterdir()}
    one_line_error(run(*args, "--no-verify"), code, message)
    assert {p: digest(p) for p in with_se.parent.iterdir()} == before


def test_existing_output_needs_force(with_se):
    assert run("remove", with_se, "--at", "9", "--no-verify").exit_code == 0
    one_line_error(run("remove", with_se, "--at", "9", "--no-verify"), 8, "already exists; pass --force")
    assert run("remove", with_se, "--at", "9", "--no-verify", "--force").exit_code == 0


def test_dry_run_prints_the_diff_and_writes_nothing(with_se):
    before = {p: digest(p) for p in with_se.parent.iterdir()}
    result = run("remove", with_se, "--at", "9", "--no-verify", "--dry-run")
    assert result.exit_code == 0, result.output
    assert {p: digest(p) for p in with_se.parent.iterdir()} == before
    assert f"--- {with_se}\n+++ {with_se.parent / 'yolo11n-SE-no9.yaml'}\n" in result.output
    assert "\n-  - [-1, 1, SE, [16]] # 9 SE (attnsurgeon)\n" in result.output
    assert "\n-  - [-1, 1, SPPF, [1024, 5]] # 10\n" in result.output  # index comments follow the rows
    assert "\n+  - [-1, 1, SPPF, [1024, 5]] # 9\n" in result.output
    assert "dry run: nothing written (would write" in result.output
    data = json.loads(run("replace", with_se, "--at", "9", "-m", "ECA", "--no-verify", "--dry-run", "--json").output)
    assert data["dry_run"] is True and "+  - [-1, 1, ECA, [1, 2, 0]] # 9 ECA (attnsurgeon)\n" in data["diff"]
    assert {p: digest(p) for p in with_se.parent.iterdir()} == before


def test_remove_and_replace_verify_the_new_model(with_se, torch_threads):
    report = api.remove(with_se, "every:SE", output=with_se.parent / "yolo11n-back.yaml", imgsz=64)
    assert report.verified and report.removed == [9, 18]
    names = [c.name for c in report.checks]
    assert "build" in names and "train step" in names and "reaches head" not in names  # no new layer to prove alive
    assert report.new["params"] < report.base["params"]
    report = api.replace(with_se, 18, "CBAM", output=with_se.parent / "yolo11n-CBAM.yaml", imgsz=64)
    assert report.verified and report.replaced == [18]
    assert any(c.name == "reaches head" and c.ok for c in report.checks)


# --------------------------------------------------------------------------------------------------------------------
# Checkpoints


@pytest.fixture(scope="module")
def checkpoint_with_se(tmp_path_factory):
    """yolo11n saved by Ultralytics, and the same with SE inserted after 8 (weights moved by insert)."""
    import torch
    from ultralytics import YOLO

    from attnsurgeon.ultralytics_bridge import ultra

    ultra.register()
    folder = tmp_path_factory.mktemp("ckpt")
    with ultra.quiet():
        model = YOLO("yolo11n.yaml")
    torch.manual_seed(2)
    with torch.no_grad():
        for p in model.model.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # not the initial values, so a lost tensor would show
    model.save(folder / "yolo11n.pt")
    api.insert(folder / "yolo11n.pt", "SE", 8, output=folder / "yolo11n-SE.pt", verify=False)
    return folder / "yolo11n.pt", folder / "yolo11n-SE.pt"


def state(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["model"].state_dict()


def test_removing_an_inserted_layer_from_a_checkpoint_gives_back_every_weight(checkpoint_with_se, tmp_path):
    import torch

    original, with_se = checkpoint_with_se
    before = digest(with_se)
    out = tmp_path / "back.pt"
    report = api.remove(with_se, 9, output=out, imgsz=64)
    assert report.verified and digest(with_se) == before
    old, new = state(original), state(out)
    assert old.keys() == new.keys()
    for key in old:
        assert torch.equal(old[key], new[key]), key
    assert out.with_suffix(".yaml").is_file()


def test_replace_in_a_checkpoint_keeps_every_other_weight(checkpoint_with_se, tmp_path):
    import torch

    _, with_se = checkpoint_with_se
    out = tmp_path / "cbam.pt"
    report = api.replace(with_se, 9, "CBAM", output=out, identity_init=True, imgsz=64)
    assert report.verified and report.replaced == [9]
    old, new = state(with_se), state(out)
    for key, tensor in old.items():
        if not key.startswith("model.9."):
            assert torch.equal(tensor, new[key]), key
    assert any(k.startswith("model.9.inner.") or k.startswith("model.9.") for k in new)
    assert not any(re.match(r"model\.9\.(fc|conv)", k) for k in new)  # the SE's own tensors are gone


def test_checkpoint_dry_run_prints_the_layer_map_and_writes_nothing(checkpoint_with_se, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, with_se = checkpoint_with_se
    before = {p: digest(p) for p in with_se.parent.iterdir()}
    result = run("remove", with_se, "--at", "9", "--dry-run", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "layer map: 10→9, 11→10" in result.output
    assert "dropped: [9]" in result.output
    assert {p: digest(p) for p in with_se.parent.iterdir()} == before
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_and_its_yaml_are_written_both_or_neither(checkpoint_with_se, tmp_path, monkeypatch):
    """The second publish fails: the .yaml already published is taken back, no temporary file is left."""
    import os

    _, with_se = checkpoint_with_se
    renames = []
    real_link = os.link

    def second_rename_fails(src, dst):  # without --force a file is published by a no-clobber hard link
        renames.append(dst)
        if len(renames) == 2:
            raise OSError(28, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", second_rename_fails)
    out = tmp_path / "pair.pt"
    one_line_error(run("remove", with_se, "--at", "9", "-o", out, "--no-verify"), 8, "No space left on device")
    assert len(renames) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(model_doc.packaged_models_dir().rglob("*.yaml")), ids=lambda p: p.name)
def test_insert_no_verify_then_remove_restores_every_packaged_file(path, tmp_path):
    """Every packaged YAML x every valid index, through the API and the files it writes."""
    from attnsurgeon.core import graph
    from attnsurgeon.errors import SurgeryError

    g = model_doc.load(path).graph
    for k in range(len(g)):
        try:
            graph.check_target(g, k)
        except SurgeryError:
            continue
        middle, back = tmp_path / f"m{k}.yaml", tmp_path / f"b{k}.yaml"
        api.insert(path, "SE", k, output=middle, verify=False)
        api.remove(middle, k + 1, output=back, verify=False)
        assert back.read_bytes() == path.read_bytes(), (path.name, k)
