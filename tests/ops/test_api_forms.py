"""Every call form of the Python API that README documents, after the options moved into one object.

README's API table lists keyword arguments (``insert(model, module, after, args=None, output=None, force=False, ...)``);
they map onto :class:`attnsurgeon.ops.run_options.RunOptions`, which can also be passed whole as ``options=``.
These tests
call each documented function the documented way and check what a user sees: the file written (or not), the report's
fields, and a ``TypeError`` for a keyword no function takes.
"""

from __future__ import annotations

import dataclasses

import pytest
from forked_yamls import CASES

import attnsurgeon
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.ops.run_options import RunOptions


def _rows(path):
    return [[row.from_, row.repeats, row.module, list(row.args)] for row in model_doc.load(path).graph.rows]


def test_insert_keywords_and_options_object_give_the_same_file(tmp_path):
    by_keywords = tmp_path / "kw-yolo11n-SE.yaml"
    by_options = tmp_path / "opt-yolo11n-SE.yaml"
    attnsurgeon.insert("yolo11n.yaml", "SE", after=8, args=[8], output=by_keywords, verify=False, rewire="all")
    attnsurgeon.insert("yolo11n.yaml", "SE", 8, [8], options=RunOptions(output=by_options, verify=False))
    assert by_keywords.read_bytes() == by_options.read_bytes()
    rows = _rows(by_keywords)
    assert rows[9] == [-1, 1, "SE", [8]] and rows[-1][0] == [17, 20, 23]  # Detect reads the renumbered P3/P4/P5


def test_a_keyword_overrides_the_options_object(tmp_path):
    base = RunOptions(output=tmp_path / "a-yolo11n-SE.yaml", verify=False)
    report = attnsurgeon.insert("yolo11n.yaml", "SE", 8, options=base, output=tmp_path / "b-yolo11n-SE.yaml")
    assert report.output == tmp_path / "b-yolo11n-SE.yaml" and report.output.is_file()
    assert not (tmp_path / "a-yolo11n-SE.yaml").exists()
    assert base.output == tmp_path / "a-yolo11n-SE.yaml"  # frozen: the caller's object is not changed


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"insert\(\) got an unexpected keyword argument 'outptu'"):
        attnsurgeon.insert("yolo11n.yaml", "SE", 8, outptu="x.yaml")
    with pytest.raises(TypeError, match=r"remove\(\) got an unexpected keyword argument 'identity_init'"):
        attnsurgeon.remove("yolo11n.yaml", at=9, identity_init=True)
    with pytest.raises(TypeError, match=r"sweep\(\) got an unexpected keyword argument 'epoch'"):
        attnsurgeon.sweep("yolo11n.yaml", "SE", "8", "out", epoch=3)


def test_options_after_args_are_keyword_only():
    with pytest.raises(TypeError):
        attnsurgeon.insert("yolo11n.yaml", "SE", 8, None, "out.yaml")  # type: ignore[misc]


def test_options_object_is_frozen_and_checks_its_size():
    options = RunOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.force = True  # type: ignore[misc]
    with pytest.raises(attnsurgeon.errors.UsageError, match="imgsz"):
        RunOptions(imgsz=50)
    assert RunOptions(checks=["export", "half"]).checks == ("export", "half")


def test_dry_run_writes_nothing_and_returns_the_diff(tmp_path):
    out = tmp_path / "yolo11n-CBAM.yaml"
    report = attnsurgeon.insert("yolo11n.yaml", "CBAM", after=["heads"], output=out, verify=False, dry_run=True)
    assert not out.exists()
    assert report.diff.count("+  - [-1, 1, CBAM, [16, 7]]") == 3  # one before each Detect input


def test_remove_and_replace_keywords(tmp_path):
    inserted = tmp_path / "yolo11n-SE.yaml"
    attnsurgeon.insert("yolo11n.yaml", "SE", after=8, output=inserted, verify=False)
    replaced = attnsurgeon.replace(inserted, at=9, module="ECA", output=tmp_path / "yolo11n-ECA.yaml", verify=False)
    assert _rows(replaced.output)[9][2] == "ECA"
    removed = attnsurgeon.remove(inserted, at="every:SE", output=tmp_path / "yolo11n-back.yaml", verify=False)
    assert removed.output.read_text(encoding="utf-8") == model_doc.load("yolo11n.yaml").text


def test_plan_insert_and_plan_augment_are_torch_free_plans():
    _doc, spec, values, result = attnsurgeon.plan_insert("yolo11n.yaml", "SE", 8, args=[4], rewire="next")
    assert (spec.name, values, result.insertions[0].index) == ("SE", [4], 9)
    _doc, spec, values, result = attnsurgeon.plan_augment("yolo11n.yaml", "EMA", "every:C3k2", args=[8])
    assert list(result.augmented) == [2, 4, 6, 8, 13, 16, 19, 22]


def test_augment_keywords(tmp_path):
    out = tmp_path / "yolo11n-C3k2_EMA.yaml"
    report = attnsurgeon.augment("yolo11n.yaml", "EMA", at=6, args=[8], where="output", output=out, verify=False)
    assert report.output == out and _rows(out)[6][2] == "Augment"


def test_show_without_build():
    _doc, scale, rows, _warnings = attnsurgeon.show("yolo11n.yaml", build=False)
    assert scale == "n" and len(rows) == 24 and rows[9].module == "SPPF" and rows[9].out_channels is None


def test_adopt_keywords(tmp_path):
    case = next(c for c in CASES if c.name == "yolov8n-cbam-channels")
    path = case.write(tmp_path)
    report = attnsurgeon.adopt(path, output=tmp_path / "adopted-yolov8n.yaml", verify=False)
    assert report.output.is_file() and [c.layer for c in report.changes] == [10]
    with pytest.raises(TypeError, match="checks"):
        attnsurgeon.adopt(path, checks="export")


def test_new_module_and_check_module_without_models(tmp_path, clean_registry):
    written = attnsurgeon.new_module("FormGate", directory=tmp_path)
    assert (written.module_file.name, written.test_file.name) == ("form_gate.py", "test_form_gate.py")
    checks = attnsurgeon.check_module("FormGate", plugin_files=[tmp_path / "form_gate.py"], models=False)
    assert checks and all(c.ok is not False for c in checks)


@pytest.mark.slow
def test_verified_insert_checkpoint_profile_and_sweep_forms(tmp_path):
    from ultralytics import YOLO

    report = attnsurgeon.insert("yolo11n.yaml", "SE", after=8, output=tmp_path / "yolo11n-SE.yaml", imgsz=64)
    assert report.verified and report.new["params"] - report.base["params"] == 2 * 256 * 16  # two 1x1 convs, no bias
    YOLO("yolo11n.yaml").save(tmp_path / "yolo11n-base.pt")
    ck = attnsurgeon.insert_checkpoint(tmp_path / "yolo11n-base.pt", "SE", 8, output=tmp_path / "se.pt", imgsz=64,
                                       identity_init=True)  # fmt: skip
    assert ck.output.is_file() and attnsurgeon.load_checkpoint(ck.output).graph.rows[9].module == "IdentityInit"
    new, base = attnsurgeon.profile_model([tmp_path / "yolo11n-SE.yaml", "yolo11n.yaml"], imgsz=64, runs=2)
    assert new.params - base.params == 2 * 256 * 16
    rows = attnsurgeon.sweep("yolo11n.yaml", "SE", "8", tmp_path / "sweep", imgsz=64, runs=2)
    assert [r["name"] for r in rows] == ["yolo11n", "yolo11n-SE-after8"]
