"""`attnsurgeon adopt --fix-stale`: a row added by hand without renumbering the references after it, repaired.

The oracle is the contract of a hand edit: a packaged model with one row typed in after layer K and nothing else
changed. Repaired, every reference reads what it read in the packaged model (renumbered), and the added row sits on
the chain as `insert --after K --rewire next` splices a row; a reference the hand edit already points at the added row
is left reading it. Both sides are worked out here from the packaged rows, not by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from forked_yamls import CASES
from test_adopt import changed_layers
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core import graph
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import SurgeryError
from attnsurgeon.ops import adopt_plan

GOLDEN = Path(__file__).parents[1] / "golden" / "adopt"
PARTIAL = next(c for c in CASES if c.name == "yolov8n-partial-renumbering")
runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def hand_edited(name: str, k: int, folder: Path) -> tuple[Path, list[list], list[list]]:
    """The packaged model ``name`` with ``[-1, 1, SE, []]`` typed in after layer ``k``; nothing else touched.
    Returns the file, the packaged rows and the hand-edited rows."""
    data = model_doc.load(name).plain()
    rows = data["backbone"] + data["head"]
    split = len(data["backbone"])
    edited = [*rows[: k + 1], [-1, 1, "SE", []], *rows[k + 1 :]]
    cut = split + 1 if k < split else split
    path = folder / f"{Path(name).stem}-hand{k}.yaml"
    text = yaml.safe_dump({**data, "backbone": edited[:cut], "head": edited[cut:]}, default_flow_style=None)
    path.write_text(text, encoding="utf-8")
    return path, rows, edited


def expected_targets(rows: list[list], edited: list[list], k: int) -> list[tuple[str, list[int]]]:
    """Per row of the repaired file: its module and the absolute layers it must read."""
    new_index = [i if i <= k else i + 1 for i in range(len(rows))]  # packaged layer -> its index in the edited file
    out = []
    for j, row in enumerate(edited):
        refs = row[0] if isinstance(row[0], list) else [row[0]]
        if j == k + 1:  # the added row reads the layer it follows
            out.append((row[2], [k]))
            continue
        old = j if j <= k else j - 1
        packaged_refs = rows[old][0] if isinstance(rows[old][0], list) else [rows[old][0]]
        targets = []
        for ref, packaged_ref in zip(refs, packaged_refs, strict=True):
            as_typed = j + ref if ref < 0 else ref  # what the hand-edited file reads
            packaged_target = old + packaged_ref if packaged_ref < 0 else packaged_ref
            meant = -1 if packaged_target < 0 else new_index[packaged_target]  # -1: the image
            # Reading the added row where the packaged model read the layer it follows: kept (it reads through it)
            targets.append(as_typed if (as_typed == k + 1 and meant == k) or meant == -1 else meant)
        out.append((row[2], targets))
    return out


def repaired_targets(path: Path) -> list[tuple[str, list[int]]]:
    plan = adopt_plan.plan(path, fix_stale=True)
    assert not [f for f in plan.findings if f.kind == "stale"], [f.message for f in plan.findings]
    repaired = adopt_plan.graph_of(plan.new_cfg)
    return [(row.module, repaired.absolute(i)) for i, row in enumerate(repaired.rows)]


def valid_positions(name: str) -> list[int]:
    doc = model_doc.load(name)
    out = []
    for k in range(len(doc.graph) - 1):
        try:
            graph.insert(doc.graph, [k], "SE", ())
        except SurgeryError:
            continue  # not a layer an attention row can follow (a multi-output layer)
        out.append(k)
    return out


@pytest.mark.parametrize("name", ["yolov8.yaml", "yolo11.yaml"])
def test_every_hand_insert_is_repaired_to_what_insert_rewire_next_writes(name, tmp_path):
    doc = model_doc.load(name)
    for k in valid_positions(name):
        path, rows, edited = hand_edited(name, k, tmp_path)
        got = repaired_targets(path)
        assert got == expected_targets(rows, edited, k), (name, k)
        spliced = graph.insert(doc.graph, [k], "SE", (), rewire="next").graph
        assert got == [(r.module, spliced.absolute(i)) for i, r in enumerate(spliced.rows)], (name, k)


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(model_doc.packaged_models_dir().rglob("*.yaml")), ids=lambda p: p.name)
def test_hand_inserts_in_every_packaged_model_are_repaired(path, tmp_path):
    positions = valid_positions(str(path))
    for k in sorted({positions[0], positions[len(positions) // 2], positions[-1]}):
        hand, rows, edited = hand_edited(str(path), k, tmp_path)
        assert repaired_targets(hand) == expected_targets(rows, edited, k), (path.name, k)


def test_fix_stale_golden(tmp_path, monkeypatch, golden):
    monkeypatch.chdir(tmp_path)
    PARTIAL.write(tmp_path)
    result = run("adopt", f"{PARTIAL.name}.yaml", "--no-verify", "--fix-stale", "-o", "fixed.yaml")
    assert result.exit_code == 0, result.output
    golden_yaml, golden_txt = GOLDEN / f"{PARTIAL.name}-fix-stale.yaml", GOLDEN / f"{PARTIAL.name}-fix-stale.txt"
    # the structure behind the snapshot: the attention row, the four index comments and the stale Concat, by index
    assert changed_layers(result.output) == [10, 13, 16, 18, 19, 22]
    # the one stale reference is the only difference from the adopt run without the flag
    assert run("adopt", f"{PARTIAL.name}.yaml", "--no-verify", "-o", "plain.yaml").exit_code == 0
    plain = (tmp_path / "plain.yaml").read_text().splitlines()
    fixed = (tmp_path / "fixed.yaml").read_text().splitlines()
    assert [(a, b) for a, b in zip(plain, fixed, strict=True) if a != b] == [
        ("  - [[-1, 12], 1, Concat, [1]] # cat head P4", "  - [[-1, 13], 1, Concat, [1]] # cat head P4")
    ]
    again = run("adopt", "fixed.yaml", "--no-verify", "--fix-stale")
    assert again.exit_code == 0 and "nothing to change" in again.output and "stale" not in again.output
    golden((golden_yaml, (tmp_path / "fixed.yaml").read_bytes()), (golden_txt, result.output))


def test_fix_stale_in_json_and_verified(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    PARTIAL.write(tmp_path)
    result = run("adopt", f"{PARTIAL.name}.yaml", "--fix-stale", "--imgsz", "320", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert {
        "layer": 18,
        "old": "[[-1, 12], 1, Concat, [1]]",
        "new": "[[-1, 13], 1, Concat, [1]]",
        "why": "read layer 12 (Concat); in yolov8.yaml this input is layer 12 (C2f), layer 13 here",
    } in payload["changes"]
    assert not [f for f in payload["findings"] if f["kind"] == "stale"]
    assert all(c["ok"] for c in payload["checks"]) and payload["checks"]


def test_a_relative_reference_stays_relative(tmp_path):
    # yolov3-tiny's head reads [-1, 8] and -2: typed in after layer 2, the -2 (a relative reference) is repaired
    # as a relative one
    path, rows, edited = hand_edited("yolov3-tiny.yaml", 2, tmp_path)
    plan = adopt_plan.plan(path, fix_stale=True)
    changed = {c.layer: (c.old, c.new) for c in plan.changes}
    assert changed, "the hand edit makes stale references"
    for old, new in changed.values():
        assert old.startswith("[") and new.startswith("[")
    repaired = adopt_plan.graph_of(plan.new_cfg)
    for i, row in enumerate(repaired.rows):
        hand = edited[i][0]
        written = row.from_
        for a, b in zip(hand if isinstance(hand, list) else [hand], row.refs(), strict=True):
            assert (a < 0) == (b < 0), (i, hand, written)
    assert repaired_targets(path) == expected_targets(rows, edited, 2)
