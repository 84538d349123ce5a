"""`attnsurgeon adopt` on a corpus of forked-Ultralytics YAMLs (tests/forked_yamls.py).

For each file: the one-line error every command gives without adopt, the exact output of adopt (golden YAML and
report), and that the adopted model's attention layer has the parameter count of the module the fork meant, counted
by constructing the catalog class directly with the input channels worked out by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from forked_yamls import CASES, Case
from typer.testing import CliRunner

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import ModuleArgsError
from attnsurgeon.ops import loading

GOLDEN = Path(__file__).parents[1] / "golden" / "adopt"
runner = CliRunner()
FORK_ORDER = {"yolov8n-cbam-kernel", "yolov8n-eca-kernel"}  # short rows the forks read in their own order
# the attention row, then the index comments that the fork's added row left one behind (layers 13, 16, 19, 22)
CHANGES = {"yolov8n-partial-renumbering": 5}


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_command_refuses_the_forked_file_with_one_line(case: Case, here):
    path = case.write(here)
    before = sorted(p.name for p in here.iterdir())
    cause = (
        "likely cause: written in a forked Ultralytics' argument order"
        if case.name in FORK_ORDER
        else "likely cause: looks like a channel count written for a modified parse_model"
    )
    commands = (
        ["show", path.name, "--no-build"],
        ["insert", path.name, "-m", "SE", "-a", "2", "--no-verify"],
        ["remove", path.name, "--at", str(case.layer), "--no-verify"],
        ["replace", path.name, "--at", str(case.layer), "-m", "SE", "--no-verify"],
    )
    for command in commands:
        result = run(*command)
        assert result.exit_code == 6, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert lines[0].startswith(f"error: {path.name}: layer {case.layer} [-1, 1, "), lines[0]
        assert "signature " + REGISTRY.get(case.intended[0]).signature() in lines[0]
        assert cause in lines[0]
        assert lines[0].endswith(f"fix: attnsurgeon adopt {path.name}")
    assert sorted(p.name for p in here.iterdir()) == before


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_adopt_output_is_the_golden_file(case: Case, here, golden):
    path = case.write(here)
    result = run("adopt", path.name, "--no-verify")
    assert result.exit_code == 0, result.output
    out = here / f"{case.name}-adopted.yaml"
    # the structure behind the snapshot: changes listed once each, by layer index, the attention row among them, and
    # each one is one line of the file (every other line is the input's)
    changed = changed_layers(result.output)
    assert changed == sorted(set(changed)) and case.layer in changed, changed
    assert len(changed) == CHANGES.get(case.name, 1)
    before, after = path.read_bytes().splitlines(), out.read_bytes().splitlines()
    assert sum(a != b for a, b in zip(before, after, strict=True)) == len(changed)
    golden((GOLDEN / out.name, out.read_bytes()), (GOLDEN / f"{case.name}.txt", result.output))


def changed_layers(output: str) -> list[int]:
    """The layer indices of the ``changed:`` entries of adopt's report, in the order it prints them."""
    return [int(m.group(1)) for m in re.finditer(r"^  layer (\d+): ", output, re.MULTILINE)]


def test_adopt_keeps_crlf_and_a_missing_final_newline(here):
    case = next(c for c in CASES if c.crlf)
    raw = case.write(here).read_bytes()
    assert run("adopt", f"{case.name}.yaml", "--no-verify").exit_code == 0
    out = (here / f"{case.name}-adopted.yaml").read_bytes()
    assert b"\r\n" in out and b"\n" not in out.replace(b"\r\n", b"")
    assert not out.endswith(b"\n")
    # everything but the attention row is byte for byte the input
    assert out.replace(b"CBAM, [16, 7]", b"CBAM, [1024]") == raw


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_adopted_file_passes_every_check(case: Case, here):
    case.write(here)
    assert run("adopt", f"{case.name}.yaml", "--no-verify").exit_code == 0
    doc = loading.load_checked(here / f"{case.name}-adopted.yaml")
    assert not [f for f in loading.findings(doc) if f.blocking]
    again = run("adopt", f"{case.name}-adopted.yaml", "--no-verify")
    assert again.exit_code == 0, again.output
    assert "nothing to change" in again.output
    assert not (here / f"{case.name}-adopted-adopted.yaml").exists()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_adopted_attention_has_the_parameter_count_of_the_intended_module(case: Case, here):
    from attnsurgeon.ultralytics_bridge import ultra

    case.write(here)
    assert run("adopt", f"{case.name}.yaml", "--no-verify").exit_code == 0
    doc = model_doc.load(here / f"{case.name}-adopted.yaml")
    model = ultra.build_model(doc.plain(), "n", f"{case.name}-adopted.yaml")
    layer = model.model[case.layer]
    name, hyper = case.intended
    cls = REGISTRY.load_class(name)
    intended = cls(case.c1, *hyper)  # constructed directly: no parse_model, no channel inference
    assert type(layer) is cls
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in intended.parameters())
    assert [tuple(p.shape) for p in layer.parameters()] == [tuple(p.shape) for p in intended.parameters()]
    if name == "SimAM":  # parameter-free: the hyper-parameter is the module's state
        assert layer.e_lambda == intended.e_lambda == hyper[0]


def test_the_forked_row_cannot_build_in_plain_ultralytics():
    """A fork row reaching parse_model directly (yolo train, YOLO(path)) is refused, never built as another module."""
    from attnsurgeon.ultralytics_bridge import ultra

    doc = model_doc.loads(CASES[0].text)
    with pytest.raises(ModuleArgsError, match=r"CBAM \[1024\] on 256 input channels: reduction=1024"):
        ultra.build_model(model_doc.to_plain(doc), "n", "yolov8n-cbam.yaml")


def test_adopt_verifies_then_writes(here):
    CASES[0].write(here)
    result = run("adopt", f"{CASES[0].name}.yaml", "--imgsz", "320")
    assert result.exit_code == 0, result.output
    for check in ("✓ build", "✓ forward 320x320", "✓ forward 224x320", "✓ forward 320x224", "✓ train step"):
        assert check in result.output
    expected = sum(p.numel() for p in REGISTRY.load_class("CBAM")(256, 16, 7).parameters())
    assert f"layer 10: {expected:,} params" in result.output
    assert (here / f"{CASES[0].name}-adopted.yaml").exists()


def test_dry_run_shows_the_diff_and_writes_nothing(here):
    CASES[0].write(here)
    result = run("adopt", f"{CASES[0].name}.yaml", "--dry-run", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "-  - [-1, 1, CBAM, [1024]] # 10\n+  - [-1, 1, CBAM, [16, 7]] # 10\n" in result.output
    assert sorted(p.name for p in here.iterdir()) == [f"{CASES[0].name}.yaml"]


def test_output_rules(here):
    path = CASES[0].write(here)
    taken = here / "taken.yaml"
    taken.write_text("keep")
    result = run("adopt", path.name, "--no-verify", "-o", taken)
    assert result.exit_code == 8
    assert "already exists; pass --force" in result.output
    assert taken.read_text() == "keep"
    assert run("adopt", path.name, "--no-verify", "-o", taken, "--force").exit_code == 0
    assert "CBAM, [16, 7]" in taken.read_text()
    into_input = run("adopt", path.name, "--no-verify", "-o", path.name, "--force")
    assert into_input.exit_code == 8
    assert "is the input file" in into_input.output


def test_json_report(here):
    CASES[1].write(here)
    result = run("adopt", f"{CASES[1].name}.yaml", "--no-verify", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["output"] == f"{CASES[1].name}-adopted.yaml"
    assert payload["changes"] == [
        {
            "layer": 10,
            "old": "[-1, 1, CBAM, [1024, 3]]",
            "new": "[-1, 1, CBAM, [16, 3]]",
            "why": "channel count [1024] dropped (attnsurgeon infers input channels); kernel_size=3 kept as in the "
            "forks' CBAM(c1, kernel_size); default reduction",
        }
    ]
    assert payload["unmapped"] == [] and payload["findings"] == [] and payload["checks"] == []


def test_rows_it_cannot_map_are_listed_and_nothing_is_written(here):
    # RepC3 is no block augment knows (C2f_CBAM becomes an Augment row: test_adopt_fork_blocks.py)
    text = CASES[0].text.replace("- [-1, 3, C2f, [512]] # 13", "- [-1, 3, RepC3_CBAM, [512]] # 13")
    text = text.replace("- [-1, 1, CBAM, [1024]] # 10", "- [-1, 1, ParNetAttention, [1024]] # 10")
    (here / "yolov8n-fork.yaml").write_text(text)
    result = run("adopt", "yolov8n-fork.yaml", "--no-verify")
    assert result.exit_code == 6
    assert "cannot map:" in result.output
    assert "layer 10: [-1, 1, ParNetAttention, [1024]]" in result.output
    assert "layer 13: [-1, 3, RepC3_CBAM, [512]] (closest: CBAM)" in result.output
    assert "it looks like a block with CBAM inside: use the plain block and insert CBAM after it" in result.output
    assert "--plugin FILE.py" in result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: yolov8n-fork.yaml: layer 10 [-1, 1, ParNetAttention, [1024]] cannot be adopted: ParNetAttention is "
        "neither a catalog module nor an Ultralytics module; make it a plugin module (`--plugin FILE.py`, or an "
        "`attnsurgeon.modules` entry point) so it builds; nothing was written"
    )
    assert sorted(p.name for p in here.iterdir()) == ["yolov8n-fork.yaml"]


def test_a_packaged_model_needs_nothing(here):
    result = run("adopt", "yolov8n.yaml", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "nothing to change" in result.output
    assert list(here.iterdir()) == []


def test_profile_and_an_identity_init_row_are_refused_too(here):
    path = CASES[0].write(here)
    result = run("profile", path.name)
    assert result.exit_code == 6
    assert "reduction=1024 is the input's channel count where reduction is expected" in result.output
    wrapped = here / "yolov8n-identity.yaml"
    wrapped.write_text(CASES[0].text.replace("- [-1, 1, CBAM, [1024]]", "- [-1, 1, IdentityInit, [CBAM, [1024]]]"))
    result = run("show", wrapped.name, "--no-build")
    assert result.exit_code == 6
    assert 'layer 10 [-1, 1, IdentityInit, ["CBAM", [1024]]]: reduction=1024' in result.output


def test_an_identity_init_row_with_fork_args_cannot_build():
    from attnsurgeon.ultralytics_bridge import ultra

    text = CASES[0].text.replace("- [-1, 1, CBAM, [1024]]", "- [-1, 1, IdentityInit, [CBAM, [1024]]]")
    with pytest.raises(ModuleArgsError, match=r"CBAM \[1024\] on 256 input channels"):
        ultra.build_model(model_doc.to_plain(model_doc.loads(text)), "n", "yolov8n-identity.yaml")


def test_a_yolo11_fork_row_in_the_backbone(here):
    """yolo11n with EMA after the P4 C3k2 (512 as written, 128 at scale n), written as a fork writes it."""
    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    api.insert("yolo11n.yaml", "EMA", 6, output=here / "yolo11n-ema.yaml", verify=False)
    path = here / "yolo11n-ema.yaml"
    path.write_text(path.read_text().replace("[-1, 1, EMA, [32]]", "[-1, 1, EMA, [512, 8]]"))
    refused = run("show", path.name, "--no-build")
    assert refused.exit_code == 6
    assert "layer 7 [-1, 1, EMA, [512, 8]]: takes 0 to 1 argument(s) but got 2" in refused.output
    assert "input channels 128 at scale n, 512 as written" in refused.output
    result = run("adopt", path.name, "--no-verify")
    assert result.exit_code == 0, result.output
    adopted = model_doc.load(here / "yolo11n-ema-adopted.yaml")
    assert adopted.graph.rows[7].args == (8,)
    model = ultra.build_model(adopted.plain(), "n", "yolo11n-ema-adopted.yaml")
    intended = REGISTRY.load_class("EMA")(128, 8)
    assert sum(p.numel() for p in model.model[7].parameters()) == sum(p.numel() for p in intended.parameters())


def test_a_forks_own_module_is_adopted_through_a_plugin(here, clean_registry):
    from plugin_files import gate_plugin

    (here / "gate.py").write_text(gate_plugin())
    (here / "yolov8n-gate.yaml").write_text(CASES[0].text.replace("CBAM, [1024]", "TestGate, [1024]"))
    without = run("adopt", "yolov8n-gate.yaml", "--no-verify")
    assert without.exit_code == 6
    assert "make it a plugin module (`--plugin FILE.py`" in without.output.splitlines()[-1]
    result = run("adopt", "yolov8n-gate.yaml", "--plugin", "gate.py", "--imgsz", "320")
    assert result.exit_code == 0, result.output
    assert "layer 10: [-1, 1, TestGate, [1024]] -> [-1, 1, TestGate, [4]]" in result.output
    assert "✓ train step" in result.output
    assert f"layer 10: {256 * 256 + 256:,} params" in result.output  # TestGate's 1x1 conv on the 256 SPPF channels
    lines = (here / "yolov8n-gate-adopted.yaml").read_text().splitlines()
    assert "attnsurgeon_plugins: [gate.py] # plugin files of this model's modules (see attnsurgeon)" in lines
    assert "  - [-1, 1, TestGate, [4]] # 10" in lines
    again = run("adopt", "yolov8n-gate-adopted.yaml", "--no-verify")  # the recorded plugin is found without --plugin
    assert again.exit_code == 0, again.output
    assert "nothing to change" in again.output


def test_plan_augment_loads_as_augment_does(tmp_path):
    """The torch-free planner refuses a forked file with the same one line as every command (NeedsAdoptionError)."""
    from attnsurgeon.errors import NeedsAdoptionError
    from attnsurgeon.ops import augment as api_augment

    path = CASES[0].write(tmp_path)
    with pytest.raises(NeedsAdoptionError, match=r"layer 10 \[-1, 1, CBAM, \[1024\]\].*fix: attnsurgeon adopt"):
        api_augment.plan_augment(path, "SE", [2])
