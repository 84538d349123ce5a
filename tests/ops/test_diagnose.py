"""Declared hyper-parameter ranges and the diagnosis of model files: no false alarms, and each finding's message.

Torch-free except the slow channel-inference check, which compares against models Ultralytics builds.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.catalog.registry import _RUNTIME, register_module, scan_file
from attnsurgeon.cli import app
from attnsurgeon.core import channels, graph
from attnsurgeon.core.yamlfile import model_doc, text_writer, tree_edits
from attnsurgeon.errors import RegistryError, SurgeryError
from attnsurgeon.ops import diagnose, loading

GOLDEN = Path(__file__).parents[1] / "golden"
PACKAGED = sorted(model_doc.packaged_models_dir().rglob("*.yaml"))
runner = CliRunner()


# --------------------------------------------------------------------------------------------------------------------
# No false alarms


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_every_packaged_yaml_has_no_findings(path):
    doc = model_doc.load(path)
    for scale in doc.scales or [""]:
        assert loading.findings(doc, scale or None) == []


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_attnsurgeon_wrote_has_no_findings(path):
    doc = loading.load_checked(path)
    assert loading.findings(doc) == []


def _insertable(g: graph.Graph) -> list[int]:
    """Every layer index insert accepts. In these models only the head (the last layer) is refused, with the
    surgery error a user sees; any other exception, or any other refusal, fails the test instead of shrinking it."""
    refused = {}
    for k in range(len(g)):
        try:
            graph.check_target(g, k)
        except SurgeryError as exc:
            refused[k] = str(exc)
    last = len(g) - 1
    assert list(refused) == [last] and refused[last].startswith(f"--after {last} is the head ("), refused
    return list(range(last))


SURGERY_MODELS = [
    "yolo11n.yaml",
    "yolov8n.yaml",
    *(
        pytest.param(m, marks=pytest.mark.slow)
        for m in ("yolo26n.yaml", "yolov9c.yaml", "yolov8n-p2.yaml", "rtdetr-l.yaml")
    ),
]


@pytest.mark.parametrize("model", SURGERY_MODELS)
def test_every_catalog_module_with_defaults_passes_at_every_position_and_scale(model):
    """What `insert` writes (every module with its defaults, after every layer) is never flagged."""
    doc = model_doc.load(model)
    data = doc.plain()
    positions = _insertable(doc.graph)
    specs = REGISTRY.specs()
    for k in positions:
        result = graph.insert(doc.graph, k, "SE", [16])
        new = result.graph
        for scale in doc.scales or [""]:
            written, scaled = diagnose.channel_views(new, data, scale)
            c1 = scaled[k]
            assert c1, (model, k, scale)
            for spec in specs:
                assert spec.problems_at(spec.defaults(), c1, [written[k], c1]) == [], (model, k, scale, spec.name)
    # the full diagnosis of real insert outputs (comments renumbered, references rewired), one row at a time
    for k in positions:
        fresh = model_doc.load(model)
        text = text_writer.dump(tree_edits.apply(fresh, graph.insert(fresh.graph, k, "CBAM", [16, 7])))
        out = model_doc.ModelDoc(model_doc.loads(text), graph.insert(fresh.graph, k, "CBAM", [16, 7]).graph, doc.path,
                              doc.stem, False, text)  # fmt: skip
        assert loading.findings(out) == [], (model, k)


def test_insert_no_verify_of_every_module_is_silent(tmp_path):
    for spec in REGISTRY.specs():
        out = tmp_path / f"yolo11n-{spec.name}.yaml"
        result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", spec.name, "-a", "4", "--no-verify", "-o", out])
        assert result.exit_code == 0, result.output
        shown = runner.invoke(app, ["show", str(out), "--no-build"])
        assert shown.exit_code == 0, shown.output
        assert "warning" not in shown.output


# --------------------------------------------------------------------------------------------------------------------
# Declared ranges


def test_every_default_satisfies_its_declared_range():
    for spec in REGISTRY.specs():
        assert spec.problems_at(spec.defaults(), None) == [], spec.name
        assert spec.check_args(spec.defaults()) == spec.defaults()


def test_modules_with_reductions_groups_and_kernels_declare_ranges():
    declared = {(s.name, a.name): dict(a.limits) for s in REGISTRY.specs() for a in s.args}
    for key in [("SE", "reduction"), ("CBAM", "reduction"), ("EMA", "factor"), ("GAM", "rate"), ("SK", "G")]:
        assert declared[key].get("below_c1") is True, key
    for key in [("CBAM", "kernel_size"), ("ECA", "k_size"), ("LSKA", "k_size"), ("MSDA", "kernel_size")]:
        assert declared[key].get("odd") is True, key


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("FocusedLinearAttention", "[8, 3, 4]", "kernel_size=4 is not an odd kernel size"),
        ("SimAM", "[2.0]", "e_lambda=2.0 is above its maximum 1"),
        ("SE", "[0]", "reduction=0 is below its minimum 1"),
        ("GC", "[0.0]", "ratio=0.0 is not above 0"),
    ],
)
def test_insert_refuses_args_outside_the_declared_range(module, args, message, tmp_path):
    out = tmp_path / "out.yaml"
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", module, "-a", "8", "--args", args, "--no-verify",
                                 "-o", out])  # fmt: skip
    assert result.exit_code == 6, result.output
    assert message in result.output
    assert not out.exists()


def test_a_reduction_not_below_the_input_channels_is_refused_where_it_lands(tmp_path):
    # yolo11n layer 0 has 16 channels at scale n (64 as written): SE reduction 32 cannot be a reduction there
    out = tmp_path / "yolo11n-SE.yaml"
    args = ["insert", "yolo11n.yaml", "-m", "SE", "-a", "0", "--args", "[32]", "--no-verify", "-o", out]
    result = runner.invoke(app, args)
    assert result.exit_code == 6
    assert result.output.strip() == (
        "error: SE [32] as layer 1: reduction=32 is not below the input channels (16) at scale n; "
        "signature SE(reduction: int = 16)"
    )
    assert not out.exists()
    elsewhere = ["insert", "yolo11n.yaml", "-m", "SE", "-a", "4", "--args", "[32]", "--no-verify", "-o", out]
    assert runner.invoke(app, elsewhere).exit_code == 0  # 64 channels there
    # a file that has such a row (written by hand) is refused by every command that reads it
    hand = tmp_path / "yolo11n-hand.yaml"
    hand.write_text(
        model_doc.load("yolo11n.yaml").text.replace(
            "- [-1, 1, Conv, [128, 3, 2]] # 1-P2/4", "- [-1, 1, Conv, [128, 3, 2]] # 1-P2/4\n  - [-1, 1, SE, [48]]"
        )
    )
    shown = runner.invoke(app, ["show", str(hand), "--no-build"])
    assert shown.exit_code == 6
    assert (
        "layer 2 [-1, 1, SE, [48]]: reduction=48 is not below the input channels (32) (input channels 32 at scale n"
        in shown.output
    )


def test_info_shows_the_declared_ranges_and_the_fork_order():
    result = runner.invoke(app, ["info", "CBAM"])
    assert result.exit_code == 0, result.output
    assert (
        "reduction: int = 16  channel reduction ratio r of the shared MLP (c1 -> c1/r -> c1) (valid: >= 1, < input "
        "channels)" in result.output
    )
    assert "forked-Ultralytics YAMLs write [channels, kernel_size]; attnsurgeon adopt maps them" in result.output
    data = json.loads(runner.invoke(app, ["info", "CBAM", "--json"]).output)
    assert data["args"][0]["range"] == {"below_c1": True, "min": 1}
    assert data["args"][1]["range"] == {"odd": True}


RANGE_FILE = """
from attnsurgeon.catalog.base import AttentionModule
from attnsurgeon.catalog.registry import register_module


@register_module(category="channel", paper="p", venue="v", year=2024, link="l", reference="r", {keyword})
class Bad(AttentionModule):
    def __init__(self, c1: int, reduction: int = 16) -> None:
        super().__init__()
"""


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ('ranges={"ratio": {"min": 1}}', "ranges names unknown hyper-parameter 'ratio'"),
        ('ranges={"reduction": {"least": 1}}', "ranges['reduction'] must be a dict with keys from"),
        ('fork_args=("kernel",)', "fork_args must name distinct hyper-parameters"),
    ],
)
def test_registry_rejects_bad_range_declarations_in_both_views(keyword, message, tmp_path):
    path = tmp_path / "bad.py"
    path.write_text(RANGE_FILE.format(keyword=keyword))
    with pytest.raises(RegistryError, match=message.replace("[", r"\[").replace("(", r"\(")):
        scan_file(path)
    extra = eval(f"dict({keyword})")  # the same keyword, given at run time

    class Bad:
        def __init__(self, c1: int, reduction: int = 16) -> None:
            pass

    with pytest.raises(RegistryError, match=message.replace("[", r"\[").replace("(", r"\(")):
        register_module(category="channel", paper="p", venue="v", year=1, link="l", reference="r", **extra)(Bad)
    _RUNTIME.pop("Bad", None)


# --------------------------------------------------------------------------------------------------------------------
# Findings and what they say


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_scale_key_and_a_lone_scale_letter_are_diagnosed(tmp_path):
    base = (model_doc.packaged_models_dir() / "v8" / "yolov8.yaml").read_text()
    path = _write(tmp_path, "yolov8-cbam-s.yaml", "scale: s\n" + base)
    found = [f.message for f in loading.findings(model_doc.load(path))]
    assert found == [
        "the file says 'scale: s', but Ultralytics reads the scale from the file name and builds yolov8-cbam-s at "
        "scale 'n'; put the letter after the version in the name (e.g. yolov8s-...yaml) and drop the 'scale:' key",
        "yolov8-cbam-s: Ultralytics reads the scale only right after the version number (yolov8s-...), so the 's' in "
        "this name is ignored and it builds at scale 'n'; rename the file",
    ]


def test_an_index_comment_that_names_another_layer_is_diagnosed(tmp_path):
    base = (model_doc.packaged_models_dir() / "v8" / "yolov8.yaml").read_text()
    path = _write(
        tmp_path, "yolov8n.yaml", base.replace("[-1, 1, SPPF, [1024, 5]] # 9", "[-1, 1, SPPF, [1024, 5]] # 8")
    )
    assert [f.message for f in loading.findings(model_doc.load(path))] == [
        "layer 9 (SPPF) has the index comment '# 8'; renumber it to 9"
    ]
    other = base.replace("[-1, 1, SPPF, [1024, 5]] # 9", "[-1, 1, SPPF, [1024, 5]] # 5 pooling kernel")
    assert loading.findings(model_doc.load(_write(tmp_path, "yolov8s.yaml", other))) == []


def test_derivation_ignores_models_that_fuse_or_resize():
    """yolov8-p2 contains yolov8's rows in order, but its added rows are Concat/Upsample: not a derivation."""
    refs = model_doc.packaged_graphs()
    p2 = model_doc.load("yolov8n-p2.yaml").graph
    assert diagnose.derivation(p2, refs) is None
    with_se = graph.insert(model_doc.load("yolov8n.yaml").graph, 6, "SE").graph
    name, _, mapping = diagnose.derivation(with_se, refs)
    assert name == "yolov8.yaml"
    assert mapping[6] == 6 and mapping[7] == 8


@pytest.mark.slow
@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_yaml_channel_inference_matches_the_built_model(path):
    """attnsurgeon.core.channels (torch-free) gives every layer's output channels as Ultralytics builds them."""
    import torch

    from attnsurgeon.ultralytics_bridge import ultra

    doc = model_doc.load(path)
    scale = doc.scales[0] if doc.scales else ""
    data = doc.plain()
    _, predicted = diagnose.channel_views(doc.graph, data, scale)
    if any(row.module == "TorchVision" for row in doc.graph.rows):
        pytest.skip("builds a torchvision backbone, whose weights would be downloaded")
    model = ultra.build_model(data, scale or None, path.name)
    seen: dict[int, int] = {}
    for index, layer in enumerate(model.model):
        layer.register_forward_hook(
            lambda m, i, o, index=index: (
                seen.__setitem__(index, o.shape[1]) if isinstance(o, torch.Tensor) and o.dim() == 4 else None
            )
        )
    with torch.inference_mode():
        model(torch.zeros(1, data.get("channels", 3), 128, 128))
    assert seen
    assert {i: predicted[i] for i in seen} == seen
    assert channels.make_divisible(1024 * 0.25) == 256


def test_a_width_may_equal_a_channel_count(tmp_path):
    """HaloAttention's dim_head is a width of its own: 32 after a 32-channel layer is a choice, not a channel count."""
    out = tmp_path / "yolo11n-HaloAttention.yaml"
    args = ["insert", "yolo11n.yaml", "-m", "HaloAttention", "-a", "1", "--args", "[2, 1, 32, 8]", "--no-verify"]
    assert runner.invoke(app, [*args, "-o", str(out)]).exit_code == 0
    shown = runner.invoke(app, ["show", str(out), "--no-build"])
    assert shown.exit_code == 0, shown.output
    assert dict(REGISTRY.get("HaloAttention").args[2].limits) == {"min": 1, "width": True}


def test_bools_stay_bools_on_the_way_to_ultralytics():
    """A bool written by insert (GC's zero_init=False) reaches parse_model as a bool, which the build-time check
    requires; 0 would be refused as 'does not fit bool'."""
    doc = model_doc.load("yolo11n.yaml")
    result = graph.insert(doc.graph, 8, "GC", REGISTRY.get("GC").defaults())
    cfg = model_doc.to_plain(tree_edits.apply(doc, result))
    assert cfg["backbone"][9][3][3] is False
    assert model_doc.to_plain([True, 1, 0.5]) == [True, 1, 0.5] and type(model_doc.to_plain(True)) is bool


def test_a_short_row_the_forks_read_differently_is_written_in_full(tmp_path):
    """`--args "[7]"` means CBAM reduction 7 here, but kernel 7 in forked YAMLs: insert writes [7, 7]."""
    out = tmp_path / "yolo11n-CBAM.yaml"
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "CBAM", "-a", "8", "--args", "[7]", "--no-verify",
                                 "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "  - [-1, 1, CBAM, [7, 7]] # 9 CBAM (attnsurgeon)\n" in out.read_text()
    assert runner.invoke(app, ["show", str(out), "--no-build"]).exit_code == 0
    assert REGISTRY.get("SE").check_args([8]) == [8]  # no fork order: as given


@pytest.mark.parametrize(
    "command",
    [
        ["insert", "yolo11n.yaml", "-m", "CBAM", "-a", "6", "--identity-init"],
        ["augment", "yolo11n.yaml", "-m", "EMA", "--at", "2"],
        ["replace", "yolo11n-SE.yaml", "--at", "9", "-m", "ECA"],
        ["remove", "yolo11n-SE.yaml", "--at", "9"],
    ],
    ids=lambda c: c[0] + ("-identity" if "--identity-init" in c else ""),
)
def test_what_every_writing_command_writes_passes_and_needs_no_adoption(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["insert", "yolo11n.yaml", "-m", "SE", "-a", "8", "--no-verify"]).exit_code == 0
    out = tmp_path / "yolo11n-written.yaml"
    result = runner.invoke(app, [*command, "--no-verify", "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = loading.load_checked(out)
    assert loading.findings(doc) == []
    adopted = runner.invoke(app, ["adopt", str(out), "--no-verify"])
    assert adopted.exit_code == 0, adopted.output
    assert "nothing to change" in adopted.output
