"""``augment``: attention inside Ultralytics' blocks. The fast subset: the row rewrite, golden YAML, errors, named
positions, the parameter identity at n and m, the Ultralytics structure it relies on, the verified command,
show/profile, a fresh-process build (the checkpoint round trip is in test_augment_checkpoint.py).

The oracle for channels and repeats (:func:`expected_units`) is written from Ultralytics' YAML conventions (scales,
``make_divisible``, each block's arguments), not from attnsurgeon's code, which walks the built block.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.cli import app
from attnsurgeon.core import augment_graph
from attnsurgeon.core.graph import Row
from attnsurgeon.core.yamlfile import model_doc, tree_edits
from attnsurgeon.errors import SurgeryError
from attnsurgeon.ops import augment as api_augment
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
GOLDEN = Path(__file__).parents[1] / "golden"


# --------------------------------------------------------------------------------------------------------------------
# The oracle


def make_divisible(x: float, divisor: int = 8) -> int:
    return math.ceil(x / divisor) * divisor


def expected_units(row: Row, scales: dict, scale: str, where: str) -> list[int]:
    """Channel count of every attention an Augment of ``row`` gets at ``scale``, from Ultralytics' conventions."""
    depth, width, max_channels = scales[scale]
    args = list(row.args)
    c2 = make_divisible(min(args[0], max_channels) * width, 8)
    n = max(round(row.repeats * depth), 1) if row.repeats > 1 else row.repeats
    if where == "output":
        return [c2]
    block = row.module
    if block == "C3k2":  # args: c2, c3k, e, attn
        c3k = (args[1] if len(args) > 1 else False) or scale in "mlx"
        attn = len(args) > 3 and args[3]
        c = int(c2 * (args[2] if len(args) > 2 else 0.5))
        if attn:  # Bottleneck + PSABlock per repeat: the conv unit takes the attention
            return [c] * n
        return [int(c * 0.5)] * (2 * n) if c3k else [c] * n  # C3k(c, c, 2): two Bottlenecks at c * 0.5
    if block in ("C2f", "C2fCIB", "C3", "C2PSA"):
        return [int(c2 * 0.5)] * n
    if block == "A2C2f":  # args: c2, a2, area
        c_ = int(c2 * 0.5)
        return [c_] * (2 * n) if args[1] else [int(c_ * 0.5)] * (2 * n)  # two ABlocks, or C3k's two Bottlenecks
    raise AssertionError(f"no oracle for {block}")


def attention_params(module: str, args: list, channels: int) -> int:
    return sum(p.numel() for p in REGISTRY.load_class(module)(channels, *args).parameters())


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def built_pair(model: str, at: list[int], module: str, args: list, where: str, scale: str):
    """The base and the augmented model, each initialised from seed 0 as Ultralytics' trainer seeds a model: a ReLU
    bottleneck of a few units (SE, CBAM at 16 channels) can be inactive on a synthetic batch for some inits."""
    doc, _, _, result = api_augment.plan_augment(model, module, at, args, where)
    new_cfg = model_doc.to_plain(tree_edits.apply(doc, result))
    torch.manual_seed(0)
    base = ultra.build_model(doc.plain(), scale)
    torch.manual_seed(0)
    return doc, base, ultra.build_model(new_cfg, scale)


# --------------------------------------------------------------------------------------------------------------------
# The pure row rewrite


def test_augment_rewrites_only_the_rows_and_moves_nothing():
    doc = model_doc.load("yolo11n.yaml")
    result = augment_graph.augment(doc.graph, [6, 2], "EMA", [8], "output")
    assert result.index_map == {i: i for i in range(len(doc.graph))}
    assert result.insertions == () and result.changed == () and result.replaced == ()
    assert result.augmented == (2, 6) and result.fresh_layers == [] and result.learning_layers == [2, 6]
    for i, (old, new) in enumerate(zip(doc.graph.rows, result.graph.rows, strict=True)):
        assert new.from_ == old.from_ and new.repeats == old.repeats and new.section == old.section
        if i in (2, 6):
            assert new.module == "Augment"
            assert list(new.args) == ["C3k2", list(old.args), "EMA", [8], "output"]
        else:
            assert new == old


def test_augment_errors_name_what_can_be_augmented():
    g = model_doc.load("yolo11n.yaml").graph
    with pytest.raises(SurgeryError, match=r"--at 9 is SPPF, which cannot be augmented; blocks that can: C2f, C3k2.*"
                       r"in this model: layers 2, 4, 6, 8, 10, 13, 16, 19, 22"):  # fmt: skip
        augment_graph.augment(g, 9, "SE")
    with pytest.raises(SurgeryError, match="outside the model, which has layers 0 to 23"):
        augment_graph.augment(g, 24, "SE")
    with pytest.raises(SurgeryError, match="given twice"):
        augment_graph.augment(g, [2, 2], "SE")
    with pytest.raises(SurgeryError, match="--where must be one of bottleneck, output"):
        augment_graph.augment(g, 2, "SE", where="inside")  # type: ignore[arg-type]
    twice = augment_graph.augment(g, 2, "SE").graph
    with pytest.raises(SurgeryError, match="--at 2 is already augmented \\(C3k2 with SE\\)"):
        augment_graph.augment(twice, 2, "ECA")


def test_golden_yaml_and_no_torch(tmp_path, golden):
    """--no-verify writes exactly the golden file, in a process that never imports torch."""
    out = tmp_path / "yolo11n-C3k2_EMA.yaml"
    code = textwrap.dedent(
        f"""
        import sys
        from typer.testing import CliRunner
        from attnsurgeon.cli import app
        r = CliRunner().invoke(app, ["augment", "yolo11n.yaml", "-m", "EMA", "--at", "2", "--at", "6", "--at", "10",
                                     "--args", "[8]", "--no-verify", "-o", {str(out)!r}])
        assert r.exit_code == 0, r.output
        print(sorted(m for m in ("torch", "ultralytics") if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr
    assert [r.args[0] for r in model_doc.load(out).graph.rows if r.module == "Augment"] == ["C3k2", "C3k2", "C2PSA"]
    golden((GOLDEN / "yolo11n-augment2,6,10-EMA.yaml", out.read_text()))


def test_default_output_name_and_named_positions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["augment", "yolo11n.yaml", "-m", "SE", "--at", "every:C2PSA,2", "--at", "backbone:every:C3k2", "--json"]
    result = runner.invoke(app, [*argv, "--no-verify"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["positions"] == {"every:C2PSA": [10], "backbone:every:C3k2": [2, 4, 6, 8]}
    assert [row["index"] for row in report["augmented"]] == [2, 4, 6, 8, 10]
    assert [p.name for p in tmp_path.iterdir()] == ["yolo11n-C3k2_C2PSA_SE.yaml"]  # blocks in index order
    output_argv = ["augment", "yolo11n.yaml", "-m", "SE", "--at", "2", "--where", "output", "--no-verify"]
    result = runner.invoke(app, output_argv)
    assert (tmp_path / "yolo11n-C3k2_SE_out.yaml").is_file(), result.output
    again = runner.invoke(app, output_argv)
    assert again.exit_code == 8 and "exists" in again.output
    forced = ["augment", "yolo11n.yaml", "-m", "SE", "--at", "2", "--where", "output", "--no-verify", "--force"]
    assert runner.invoke(app, forced).exit_code == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--at", "9"], 4, "--at 9 is SPPF, which cannot be augmented; blocks that can: C2f, C3k2, C3, C3k, C3x"),
        (["--at", "2", "--where", "inside"], 4, "--where must be one of bottleneck, output, got 'inside'"),
        (["--at", "2", "-m", "Nope"], 5, "Nope"),
        (["--at", "2", "--args", "[1, 2, 3, 4]"], 6, "EMA takes"),
    ],
)
def test_cli_errors_are_one_line_with_their_exit_code(argv, code, message, tmp_path):
    base = ["augment", "yolo11n.yaml", "-m", "EMA", "--no-verify", "-o", str(tmp_path / "x.yaml")]
    result = runner.invoke(app, base + argv if "-m" not in argv else base[:2] + argv + base[4:])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.yaml").exists()


# --------------------------------------------------------------------------------------------------------------------
# Built models


@pytest.mark.parametrize("scale", ["n", "m"])  # C3k2 is Bottleneck-based at n, C3k-based at m
def test_every_block_of_yolo11_keeps_its_channels_and_repeats(scale):
    """Every C3k2 and the C2PSA augmented: params grow by exactly the attention built at the oracle's channels, the
    head keeps its YOLO11 (non-legacy) form, and every base tensor keeps its key and shape."""
    doc = model_doc.load("yolo11n.yaml")
    blocks = [i for i, r in enumerate(doc.graph.rows) if r.module in ("C3k2", "C2PSA")]
    doc, base, new = built_pair("yolo11n.yaml", blocks, "EMA", [8], "bottleneck", scale)
    units = [c for i in blocks for c in expected_units(doc.graph.rows[i], doc.data["scales"], scale, "bottleneck")]
    assert count(new) - count(base) == sum(attention_params("EMA", [8], c) for c in units)
    assert type(new.model[-1]).legacy is False
    base_sd, new_sd = base.state_dict(), new.state_dict()
    assert all(k in new_sd and new_sd[k].shape == v.shape for k, v in base_sd.items())
    kinds = {type(m).__name__ for m in new.model[2].m}
    assert kinds == ({"Bottleneck"} if scale == "n" else {"C3k"})


def test_output_attention_is_one_per_block_at_the_block_width():
    doc, base, new = built_pair("yolo11n.yaml", [2, 10, 22], "SE", [4], "output", "s")
    units = [c for i in (2, 10, 22) for c in expected_units(doc.graph.rows[i], doc.data["scales"], "s", "output")]
    assert units == [128, 512, 512]
    assert count(new) - count(base) == sum(attention_params("SE", [4], c) for c in units)


def zero_attention(conv: torch.nn.Module) -> None:
    """Make an attended conv's attention output zeros, to see exactly where in the unit it sits."""
    from attnsurgeon.ultralytics_bridge import augment_blocks

    augment_blocks.attend(conv, "SE", [4])
    conv.attn = ZeroOut()


class ZeroOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_bottleneck_attention_sits_on_the_residual_branch_before_the_addition():
    """Pins Ultralytics' unit structure: with a zero attention, a residual unit returns exactly what it adds the
    branch to (Bottleneck, CIB: x; PSABlock, ABlock: x + attn(x))."""
    from ultralytics.nn.modules import block as b

    from attnsurgeon.ultralytics_bridge import augment_blocks

    ultra.register()
    torch.manual_seed(0)
    x = torch.rand(1, 64, 8, 8)
    for unit in (b.Bottleneck(64, 64), b.CIB(64, 64)):
        targets = augment_blocks.units(unit)
        assert len(targets) == 1
        zero_attention(targets[0])
        assert torch.equal(unit.eval()(x), x), type(unit).__name__
    for unit in (b.PSABlock(64, num_heads=1), b.ABlock(64, 2)):
        targets = augment_blocks.units(unit)
        zero_attention(targets[0])
        unit.eval()
        with torch.no_grad():
            assert torch.allclose(unit(x), x + unit.attn(x)), type(unit).__name__
    # a C3k2 at m/l/x nests the units inside C3k; at n they are its own Bottlenecks
    assert len(augment_blocks.units(b.C3k2(64, 64, 2, c3k=True))) == 4
    assert len(augment_blocks.units(b.C3k2(64, 64, 2, c3k=False, attn=True))) == 2  # Bottlenecks, not PSABlocks


@pytest.mark.parametrize("name", augment_graph.AUGMENTABLE_BLOCKS)
def test_output_attention_sees_the_block_output(name):
    """Pins each augmentable block's last conv: with a zero attention after it, the block outputs zeros."""
    from ultralytics.nn.modules import block as b

    from attnsurgeon.ultralytics_bridge import augment_blocks

    block = getattr(b, name)(64, 64, 1).eval()
    zero_attention(getattr(block, augment_blocks.OUTPUT_CONV[name]))
    with torch.no_grad():
        assert torch.count_nonzero(block(torch.rand(1, 64, 8, 8))) == 0


def test_register_wraps_parse_model_once():
    import inspect

    from ultralytics.nn import tasks

    ultra.register()
    wrapped = tasks.parse_model
    ultra.register()
    assert tasks.parse_model is wrapped
    assert inspect.unwrap(wrapped).__module__ == "ultralytics.nn.tasks"


def test_a_bad_augment_row_fails_the_build_with_a_clear_message():
    from attnsurgeon.errors import ModuleArgsError

    cfg = model_doc.load("yolo11n.yaml").plain()
    cfg["backbone"][2] = [-1, 2, "Augment", ["SPPF", [256], "SE", [], "bottleneck"]]
    with pytest.raises(ModuleArgsError, match="layer 2: Augment cannot augment 'SPPF'; blocks that can: C2f"):
        ultra.build_model(cfg, "n")
    cfg["backbone"][2] = [-1, 2, "Augment", ["C3k2", [256, False, 0.25], "SE", ["x"], "bottleneck"]]
    with pytest.raises(ModuleArgsError, match=r"layer 2 \(C3k2, bottleneck\): SE argument 'reduction' got 'x'"):
        ultra.build_model(cfg, "n")
    cfg["backbone"][2] = [-1, 2, "Augment", ["C3k2", [256, False, 0.25], "EMA", [8]]]
    with pytest.raises(ModuleArgsError, match=r"layer 2: Augment takes \[Block, \[block args\], Attention"):
        ultra.build_model(cfg, "n")


# --------------------------------------------------------------------------------------------------------------------
# The command, verified


def test_verified_augment_reports_checks_counts_and_costs(tmp_path):
    out = tmp_path / "yolo11n-C3k2_EMA.yaml"
    argv = ["augment", "yolo11n.yaml", "-m", "EMA", "--at", "2", "--at", "6", "--args", "[8]", "--imgsz", "128"]
    result = runner.invoke(app, [*argv, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["operation"] == "augment" and report["verified"] is True
    assert report["augmented"] == [
        {"index": 2, "block": "C3k2", "block_args": [256, False, 0.25], "where": "bottleneck"},
        {"index": 6, "block": "C3k2", "block_args": [512, True], "where": "bottleneck"},
    ]
    assert report["inserted"] == [] and report["changed"] == []
    expected = {"2": {"modules": 1, "params": attention_params("EMA", [8], 16)}}
    expected["6"] = {"modules": 2, "params": 2 * attention_params("EMA", [8], 32)}
    assert report["attention"] == {"n": expected}
    names = [c["name"] for c in report["checks"]]
    assert names == ["build", "block kept", "forward 128x128", "forward 96x128", "forward 128x96", "train step"]
    assert all(c["ok"] for c in report["checks"])
    growth = report["new"]["params"] - report["base"]["params"]
    assert growth == sum(v["params"] for v in expected.values())
    assert out.is_file()


def test_training_step_reaches_every_attention_parameter():
    from attnsurgeon.checks import verify

    _, base, new = built_pair("yolo11n.yaml", [4, 8, 10], "CBAM", [4], "bottleneck", "n")
    fresh = {k for k, _ in new.named_parameters()} - {k for k, _ in base.named_parameters()}
    assert fresh and all(".attn." in k for k in fresh)
    new.train()
    loss, _ = new.loss(verify.synthetic_batch(new, 64))
    loss.sum().backward()
    for name, p in new.named_parameters():
        if name in fresh:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    new.eval()
    with torch.no_grad():
        assert new(torch.rand(1, 3, 96, 160))[0].shape[-1] == (12 * 20 + 6 * 10 + 3 * 5)


def test_show_marks_augmented_layers(tmp_path):
    out = tmp_path / "yolo11n-C3k2_SE.yaml"
    api_augment.augment("yolo11n.yaml", "SE", [2], [4], output=out, verify=False)
    result = runner.invoke(app, ["show", str(out), "--json"])
    assert result.exit_code == 0, result.output
    layers = json.loads(result.output)["layers"]
    assert layers[2]["augmented"] == {
        "block": "C3k2",
        "block_args": [256, False, 0.25],
        "module": "SE",
        "args": [4],
        "identity_init": False,
        "where": "bottleneck",
    }
    assert layers[4]["augmented"] is None
    text = runner.invoke(app, ["show", str(out), "--no-build"]).output
    assert "◆ C3k2+SE" in text


def test_profile_layers_attributes_the_attention_inside_the_block(tmp_path):
    from attnsurgeon.ops.profile import profile

    out = tmp_path / "yolo11n-C3k2_SE.yaml"
    api_augment.augment("yolo11n.yaml", "SE", [2, 6], [4], output=out, verify=False)
    (report,) = profile(str(out), imgsz=64, runs=2, warmup=1, budget_s=0.0, layers=True)
    inside = {layer.index: layer.inside for layer in report.layers if layer.inside}
    assert set(inside) == {2, 6}
    assert inside[2]["module"] == "SE" and inside[2]["count"] == 1 and inside[6]["count"] == 2
    assert inside[2]["params"] == attention_params("SE", [4], 16)
    assert inside[6]["params"] == 2 * attention_params("SE", [4], 32)
    for i in (2, 6):
        assert 0 < inside[i]["flops"] < report.layers[i].flops  # SE's two 1x1 convs, counted inside the block
        assert inside[i]["ms"] is not None and inside[i]["ms"] > 0


def test_plain_ultralytics_builds_it_in_a_fresh_process(tmp_path):
    out = tmp_path / "yolo11n-C3k2_EMA.yaml"
    api_augment.augment("yolo11n.yaml", "EMA", [2, 6, 10], [8], output=out, verify=False)
    code = textwrap.dedent(
        """
        import json, sys
        from ultralytics import YOLO
        model = YOLO("yolo11n-C3k2_EMA.yaml").model
        print(json.dumps({"params": sum(p.numel() for p in model.parameters()),
                          "attn": type(model.model[6].m[0].m[0].cv2.attn).__name__,
                          "api": "attnsurgeon.ops.surgery" in sys.modules}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    new = built_pair("yolo11n.yaml", [2, 6, 10], "EMA", [8], "bottleneck", "n")[2]
    assert found == {"params": count(new), "attn": "EMA", "api": False}


def test_fused_model_keeps_the_attention():
    """Pins Ultralytics' fuse(): it folds BatchNorm into each Conv and switches it to forward_fuse, which the attended
    conv overrides, so the deployed (fused) model computes the same outputs."""
    new = built_pair("yolo11n.yaml", [2, 6, 10], "CBAM", [4], "bottleneck", "n")[2].eval()
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = new(x)[0]
        with ultra.quiet():
            new.fuse()
        after = new(x)[0]
    from attnsurgeon.ultralytics_bridge.augment_blocks import attended_convs

    convs = [conv for _, conv in attended_convs(new)]
    assert convs and not any(hasattr(conv, "bn") for conv in convs)
    assert torch.allclose(before, after, atol=1e-3, rtol=1e-3)
