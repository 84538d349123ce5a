"""`attnsurgeon sweep` without training: variants named, written as insert writes them, costed (checked against
whole-model measurements), failures as rows, reruns that skip, interrupts that lose nothing, tables and plots."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()
COST = ["--imgsz", "64", "--runs", "5"]
# yolo11n (scale n, width 0.25): layer 8 is C3k2 [1024] -> 256 channels, layer 16 is C3k2 [256] -> 64 (Ultralytics'
# yolo11.yaml); an inserted layer sees these.
CHANNELS = {"8": 256, "16": 64}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def cost_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    result = run("sweep", "yolo11n.yaml", "-m", "SE,CBAM,EMA", "--at", "8,16", "-o", out, *COST)
    return out, result


# ---------------------------------------------------------------------------------------------------------------------
# A cost-only sweep (builds models)


def test_sweep_writes_insert_yamls_and_results(cost_sweep):
    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.ops import surgery as api

    out, result = cost_sweep
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "results.json").read_text())["rows"]
    names = ["yolo11n"] + [f"yolo11n-{m}-after{a}" for m in ("SE", "CBAM", "EMA") for a in ("8", "16")]
    assert [r["name"] for r in rows] == names
    with (out / "results.csv").open(newline="") as fh:
        assert [r["name"] for r in csv.DictReader(fh)] == names
    assert all(r["status"] == "ok" for r in rows)
    for r in rows[1:]:
        expected = api.insert("yolo11n.yaml", r["module"], int(r["at"]), verify=False, write=False).yaml_text
        assert (out / f"{r['name']}.yaml").read_text() == expected
    assert (out / "yolo11n.yaml").read_text() == model_doc.load("yolo11n.yaml").text
    assert "sorted by gflops" in result.output and "yolo11n-EMA-after16" in result.output


def test_sweep_costs_agree_with_independent_counts(cost_sweep):
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.costs.flops import count_params
    from attnsurgeon.ops.profile import profile

    out, _ = cost_sweep
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    base = rows["yolo11n"]
    for name, r in rows.items():
        if r["op"] == "base":
            continue
        layer = REGISTRY.load_class(r["module"])(CHANNELS[r["at"]])
        assert r["params"] - base["params"] == count_params(layer), name
        assert r["latency_ms"] > base["latency_ms"], name  # the base plus the new layer's own time
    for name in ("yolo11n", "yolo11n-EMA-after16", "yolo11n-CBAM-after8"):
        whole = profile(out / f"{name}.yaml", imgsz=64, runs=5, warmup=1)[0]  # the whole model, counted afresh
        assert rows[name]["gflops"] == round(whole.gflops.value, 6), name
        assert rows[name]["gflops_exact"] == round(whole.gflops_exact, 6), name
        assert rows[name]["params"] == whole.params


def test_rerun_skips_everything_and_touches_nothing(cost_sweep):
    out, _ = cost_sweep
    before = {p.name: digest(p) for p in out.iterdir() if p.is_file()}
    result = run("sweep", "yolo11n.yaml", "-m", "SE,CBAM,EMA", "--at", "8,16", "-o", out, *COST, "--no-plots")
    assert result.exit_code == 0, result.output
    assert "7 row(s) already done with these settings: skipped" in result.output
    assert {p.name: digest(p) for p in out.iterdir() if p.is_file()} == before


def test_other_settings_are_new_rows_beside_the_old(cost_sweep, tmp_path):
    from attnsurgeon.sweeps import runner as sweeper

    out, _ = cost_sweep
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.json").write_bytes((out / "results.json").read_bytes())
    job = sweeper.start("yolo11n.yaml", "SE", "8", copy, imgsz=96, runs=5)
    sweeper.run(job)
    assert job.skipped == []  # another image size: nothing reused
    stored = json.loads((copy / "results.json").read_text())["rows"]
    assert len(stored) == 7 + 2 and {r["imgsz"] for r in stored} == {64, 96}


def test_an_interrupted_sweep_loses_nothing_and_a_rerun_completes_it(tmp_path):
    from attnsurgeon.sweeps import runner as sweeper

    out = tmp_path / "out"

    def interrupt_after_two(stage, name, done, total):
        if stage == "done" and done == 2:
            raise KeyboardInterrupt

    job = sweeper.start("yolo11n.yaml", "SE,ECA", "8,16", out, imgsz=64, runs=5)
    with pytest.raises(KeyboardInterrupt):
        sweeper.run(job, progress=interrupt_after_two)
    kept = json.loads((out / "results.json").read_text())["rows"]
    assert [r["name"] for r in kept] == ["yolo11n", "yolo11n-SE-after8"]
    again = sweeper.start("yolo11n.yaml", "SE,ECA", "8,16", out, imgsz=64, runs=5)
    sweeper.run(again)
    assert again.skipped == ["yolo11n", "yolo11n-SE-after8"]
    rows = json.loads((out / "results.json").read_text())["rows"]
    names = [r["name"] for r in rows]
    assert names == [v.name for v in again.variants] and len(set(r["key"] for r in rows)) == len(rows) == 5
    assert rows[1] == kept[1]  # the row written before the interrupt is the one kept


def test_a_failing_variant_is_a_row_and_the_exit_code_says_so(tmp_path):
    out = tmp_path / "out"
    # Three groups but one kernel size fits EfficientAttention's signature and declared ranges, not the module (it
    # needs one group per kernel size plus the global one): the variant does not build.
    grid = "EfficientAttention=[0, [1, 1, 1], [7], 4]|[0, [1, 1], [7], 4]"
    result = run(
        "sweep", "yolo11n.yaml", "-m", "EfficientAttention", "--at", "4", "--args-grid", grid, "-o", out, *COST
    )
    assert result.exit_code == 9, result.output
    bad, good = "yolo11n-EfficientAttention_0_1x1x1_7_4-after4", "yolo11n-EfficientAttention_0_1x1_7_4-after4"
    assert result.output.strip().splitlines()[-1] == f"error: 1 of 3 variants failed ({bad}); see the reason column"
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    failed = rows[bad]
    assert failed["status"] == "failed" and failed["params"] is None
    assert failed["reason"] == (
        "check 'build' failed: ValueError: EfficientAttention needs len(kernel_sizes) + 1 == len(group_split), got "
        "(7,) and (1, 1, 1)"
    )
    assert rows[good]["status"] == "ok"
    assert (out / f"{bad}.yaml").is_file()  # written, so the failure can be inspected


def test_checks_are_reproducible(tmp_path):
    from attnsurgeon.sweeps import runner as sweeper

    first = sweeper.sweep("yolo11n.yaml", "SE", "16", tmp_path / "a", imgsz=64, runs=5)
    second = sweeper.sweep("yolo11n.yaml", "SE", "16", tmp_path / "b", imgsz=64, runs=5)
    assert [(r["status"], r["checks"], r["params"]) for r in first] == [
        (r["status"], r["checks"], r["params"]) for r in second
    ]


def test_named_positions_are_one_variant_each(tmp_path):
    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.costs.flops import count_params
    from attnsurgeon.ops.profile import profile
    from attnsurgeon.sweeps import runner as sweeper

    rows = sweeper.sweep("yolo11n.yaml", "SE", "heads,p4+sppf", tmp_path / "out", imgsz=64, runs=5)
    assert [(r["name"], r["layers"]) for r in rows] == [
        ("yolo11n", []),
        ("yolo11n-SE-after-heads", [17, 21, 25]),  # Detect reads 16, 19, 22 (64, 128, 256 channels at n)
        ("yolo11n-SE-after-p4+sppf", [7, 11]),  # p4 is layer 6 (128 channels), SPPF is layer 9 (256)
    ]
    se = REGISTRY.load_class("SE")
    assert rows[1]["params"] - rows[0]["params"] == sum(count_params(se(c)) for c in (64, 128, 256))
    assert rows[2]["params"] - rows[0]["params"] == sum(count_params(se(c)) for c in (128, 256))
    whole = profile(tmp_path / "out" / "yolo11n-SE-after-heads.yaml", imgsz=64, runs=5, warmup=1)[0]
    assert rows[1]["gflops_exact"] == round(whole.gflops_exact, 6)


def test_whole_model_checks_give_the_same_costs(cost_sweep, tmp_path):
    from attnsurgeon.sweeps import runner as sweeper

    out, _ = cost_sweep
    rows = sweeper.sweep("yolo11n.yaml", "CBAM", "8", tmp_path / "model", imgsz=64, runs=5, checks="model")
    ours = {r["name"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert rows[1]["checks"] == "reaches head, build, forward 64x64, forward 32x64, forward 64x32, train step"
    for key in ("params", "gflops", "gflops_exact"):
        assert rows[1][key] == ours["yolo11n-CBAM-after8"][key]


def test_cost_plots_label_every_variant(cost_sweep):
    from attnsurgeon.sweeps.plot import plot_data

    out, result = cost_sweep
    assert "plot: " in result.output
    for stem in ("cost_params", "cost_latency"):
        assert (out / "plots" / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((out / "results.json").read_text())["rows"]
    for data in plot_data(rows):
        assert sorted(label for label, _, _ in data.points) == sorted(
            ["base"] + [r["name"].removeprefix("yolo11n-") for r in rows[1:]]
        )


def test_markdown_table(cost_sweep):
    out, _ = cost_sweep
    result = run("sweep", "yolo11n.yaml", "-m", "SE,CBAM,EMA", "--at", "8,16", "-o", out, *COST, "--markdown",
                 "--no-plots", "--sort", "params")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "| variant | params | GFLOPs | GFLOPs exact | latency ms | status |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2].startswith("| yolo11n (base) | 2,624,080 | ")
    assert "sorted by params" in result.output


def test_fuse_layer_is_ultralytics_fuse_for_one_layer():
    import copy

    import torch

    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.ultralytics_bridge import ultra

    model = ultra.build_model(model_doc.load("yolo11n.yaml").plain(), "n", "yolo11n.yaml").eval()
    fused_model = copy.deepcopy(model).fuse(verbose=False)
    layer = ultra.fuse_layer(copy.deepcopy(model.model[2]))  # a C3k2: Conv+BN pairs inside
    x = torch.rand(1, 32, 16, 16)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in layer.modules())
    with torch.inference_mode():
        assert torch.allclose(layer(x), fused_model.model[2](x), atol=1e-6)
        assert torch.allclose(layer(x), model.model[2](x), atol=1e-4)


def test_an_edited_model_is_swept_again(tmp_path):
    from attnsurgeon.core.yamlfile import model_doc
    from attnsurgeon.sweeps import runner as sweeper

    model = tmp_path / "yolo11n.yaml"
    model.write_text(model_doc.load("yolo11n.yaml").text)
    first = sweeper.start(model, "SE", "8", tmp_path / "out", imgsz=64, runs=5)
    sweeper.run(first)
    model.write_text(model.read_text().replace("nc: 80", "nc: 3"))
    again = sweeper.start(model, "SE", "8", tmp_path / "out", imgsz=64, runs=5)
    sweeper.run(again)
    assert first.skipped == [] and again.skipped == []  # the edited model's rows are new, not the old ones reused
    assert [r["params"] < old["params"] for r, old in zip(again.rows(), first.rows(), strict=True)] == [True, True]


def test_full_latency_times_whole_variants_with_the_same_counts(cost_sweep, tmp_path):
    from attnsurgeon.sweeps import runner as sweeper

    out, _ = cost_sweep
    rows = sweeper.sweep("yolo11n.yaml", "EMA", "16", tmp_path / "full", imgsz=64, runs=5, latency="full")
    ours = {r["name"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    for key in ("params", "gflops", "gflops_exact"):  # exact FLOPs counted on the whole deployed variant here
        assert rows[1][key] == ours["yolo11n-EMA-after16"][key]
    assert rows[1]["latency_ms"] > 0


def test_retry_failed_redoes_only_failed_rows(tmp_path):
    from attnsurgeon.sweeps import runner as sweeper

    args = ("yolo11n.yaml", "EfficientAttention", "4", tmp_path / "out")
    grid = {"args_grid": ["EfficientAttention=[0, [1, 1, 1], [7], 4]|[0, [1, 1], [7], 4]"], "imgsz": 64, "runs": 5}
    sweeper.run(sweeper.start(*args, **grid))
    again = sweeper.start(*args, **grid)
    sweeper.run(again, retry_failed=True)
    assert again.skipped == ["yolo11n", "yolo11n-EfficientAttention_0_1x1_7_4-after4"]
    assert [r["status"] for r in again.rows()] == ["ok", "failed", "ok"]


def test_augment_variants_cost_what_the_whole_model_costs(tmp_path):
    """--op augment: each variant's params and exact FLOPs equal the written YAML's, counted whole by profile."""
    from attnsurgeon.ops.profile import profile
    from attnsurgeon.sweeps import runner as sweeper

    rows = sweeper.sweep("yolo11n.yaml", "SE", "2,every:C3k2", tmp_path / "out", op="augment", imgsz=64, runs=5)
    assert [r["name"] for r in rows] == ["yolo11n", "yolo11n-SE-in2", "yolo11n-SE-in-every-C3k2"]
    assert all(not r.get("error") for r in rows), rows
    for row in rows[1:]:
        whole = profile(tmp_path / "out" / row["yaml"], imgsz=64, runs=5, warmup=1)[0]
        assert row["params"] == whole.params > rows[0]["params"]
        assert row["gflops_exact"] == round(whole.gflops_exact, 6)
