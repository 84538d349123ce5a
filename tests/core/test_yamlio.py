"""Model resolution and round-trip details of yamlio."""

from __future__ import annotations

import pytest

from attnsurgeon.core import graph, publish
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import ModelFileError


@pytest.mark.parametrize(
    ("name", "file", "stem", "scale"),
    [
        ("yolo11n.yaml", "11/yolo11.yaml", "yolo11n", "n"),
        ("yolo11n", "11/yolo11.yaml", "yolo11n", "n"),
        ("yolo26m-seg.yaml", "26/yolo26-seg.yaml", "yolo26m-seg", "m"),
        ("yolov8s-p2.yaml", "v8/yolov8-p2.yaml", "yolov8s-p2", "s"),
        ("yolov8n6.yaml", "v8/yolov8-p6.yaml", "yolov8n-p6", "n"),
        ("yoloe-11s-seg.yaml", "11/yoloe-11-seg.yaml", "yoloe-11s-seg", "s"),
        ("rtdetr-l.yaml", "rt-detr/rtdetr-l.yaml", "rtdetr-l", ""),
        ("yolov9c.yaml", "v9/yolov9c.yaml", "yolov9c", ""),
    ],
)
def test_packaged_names_resolve_like_ultralytics(name, file, stem, scale):
    path, got_stem, packaged = model_doc.resolve_model_path(name)
    assert packaged and path == model_doc.packaged_models_dir() / file
    assert got_stem == stem and model_doc.guess_scale(got_stem) == scale


def test_a_local_file_wins_over_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolo11n.yaml").write_text("backbone: []\nhead: []\n")
    path, _, packaged = model_doc.resolve_model_path("yolo11n.yaml")
    assert not packaged and path.resolve() == (tmp_path / "yolo11n.yaml").resolve()


def test_non_yaml_path_is_refused(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\0")
    with pytest.raises(ModelFileError, match="not a YAML model file"):
        model_doc.resolve_model_path(weights)


USER_YAML = """\
# my model
nc: 3
depth_multiple: 0.33
width_multiple: 0.25
backbone:
  - [-1, 1, Conv, [64, 3, 2]]   # 0-P1/2
  - [-1, 1, Conv, [128, 3, 2]]  # 1-P2/4
  - [-1, 3, C2f, [128, true]]   # lowercase booleans stay lowercase
  - [-1, 1, Conv, [256, 3, 2]]  # 3-P3/8
head:
  - [[-1, 2], 1, Concat, [1]]   # 4: 2 is absolute
  - [[4], 1, Detect, [nc]]      # 5
"""


def test_user_file_keeps_its_spelling_and_renumbers_only_index_comments(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(USER_YAML)
    doc = model_doc.load(path)
    assert text_writer.dump(doc.data) == USER_YAML
    text = text_writer.dump(tree_edits.apply(doc, graph.insert(doc.graph, [0, 2], "SE", [8])))
    assert (
        text
        == """\
# my model
nc: 3
depth_multiple: 0.33
width_multiple: 0.25
backbone:
  - [-1, 1, Conv, [64, 3, 2]]   # 0-P1/2
  - [-1, 1, SE, [8]] # 1 SE (attnsurgeon)
  - [-1, 1, Conv, [128, 3, 2]]  # 2-P2/4
  - [-1, 3, C2f, [128, true]]   # lowercase booleans stay lowercase
  - [-1, 1, SE, [8]] # 4 SE (attnsurgeon)
  - [-1, 1, Conv, [256, 3, 2]]  # 5-P3/8
head:
  - [[-1, 4], 1, Concat, [1]]   # 6: 2 is absolute
  - [[6], 1, Detect, [nc]]      # 7
"""
    )


def test_atomic_write_replaces_and_keeps_mode(tmp_path):
    target = tmp_path / "out.yaml"
    target.write_text("old\n")
    target.chmod(0o640)
    publish.publish(target, "new\n", force=True)
    assert target.read_text() == "new\n" and (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]


def test_a_copied_document_dumps_byte_for_byte_and_is_independent(tmp_path):
    """copy_doc (the sweep's per-variant copy, and apply's when not in place) keeps every comment and style."""
    texts = [USER_YAML.replace("\n", "\r\n"), USER_YAML.rstrip("\n"), USER_YAML]
    paths = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))
    for i, text in enumerate(texts):
        path = tmp_path / f"user{i}.yaml"
        path.write_bytes(text.encode())
        paths.append(path)
    for path in paths:
        doc = model_doc.load(path)
        before = text_writer.dump(doc.data)
        copy = model_doc.copy_doc(doc)
        assert text_writer.dump(copy.data) == before, path
        spent = tree_edits.apply(copy, graph.insert(copy.graph, [0], "SE", [8]), in_place=True)
        assert text_writer.dump(spent) != before
        assert text_writer.dump(doc.data) == before, f"{path}: surgery on the copy changed the original"
