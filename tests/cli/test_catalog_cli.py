"""`list` and `info` as a user sees them (the catalog page of the site: tests/project/test_docs.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from attnsurgeon.catalog import CATEGORIES, REGISTRY
from attnsurgeon.cli import app

runner = CliRunner()
# modules with no convolution or matrix product: gates from pooling, normalisation or per-channel scales only
ELEMENTWISE_ONLY = {"GCT", "NAM", "ShuffleAttention", "SimAM"}


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ATTNSURGEON_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "attnsurgeon-cache"))


def test_catalog_has_at_least_30_modules_in_known_categories():
    specs = REGISTRY.specs()
    assert len(specs) >= 30
    assert {s.category for s in specs} <= set(CATEGORIES)
    names = [n.lower() for s in specs for n in (s.name, *s.aliases)]
    assert len(names) == len(set(names)), "a name or alias is used twice"


def test_list_json():
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == REGISTRY.names()
    for row in rows:
        assert {"name", "aliases", "category", "paper", "year", "args", "params", "gflops"} <= set(row)
        assert all({"name", "default"} <= set(a) for a in row["args"])
        assert isinstance(row["params"], int) and isinstance(row["gflops"], float)
        # a real figure: FLOPs count convolutions and matrix products, so only modules made of element-wise,
        # pooling and normalisation arithmetic cost 0 (an error in profiling would also read 0, as get_flops does)
        assert (row["gflops"] == 0) is (row["name"] in ELEMENTWISE_ONLY), (row["name"], row["gflops"])
    by_name = {r["name"]: r for r in rows}
    se = by_name["SE"]
    assert se["params"] == 2 * 256 * 16 and se["args"][0]["name"] == "reduction" and se["args"][0]["default"] == 16
    # at C=256, 20x20: SE's two bias-free FC layers on the pooled vector, 256->16->256, 2 FLOPs per multiply-add;
    # ECA's 1-D conv of k=5 (C=256) across the 256 channels. list rounds to 1e-6 GFLOPs.
    assert se["gflops"] == pytest.approx(2 * (256 * 16 + 16 * 256) / 1e9, abs=5e-7)
    assert by_name["ECA"]["gflops"] == pytest.approx(2 * 256 * 5 / 1e9, abs=5e-7)


def test_list_category_filter_and_bad_category():
    result = runner.invoke(app, ["list", "--category", "channel", "--json", "--no-cost"])
    assert result.exit_code == 0, result.output
    assert {r["category"] for r in json.loads(result.output)} == {"channel"}
    bad = runner.invoke(app, ["list", "--category", "fancy"])
    assert bad.exit_code == 2 and bad.output.startswith("error: --category 'fancy' is not a category")


def test_info_text_and_json():
    result = runner.invoke(app, ["info", "haloattention"])
    assert result.exit_code == 0, result.output
    for needle in (
        "Scaling Local Self-Attention",
        "arxiv.org",
        "reference implementation",
        "block_size",
        "YAML: - [-1, 1, HaloAttention",
    ):
        assert needle in result.output, needle
    data = json.loads(runner.invoke(app, ["info", "CBAM", "--json"]).output)
    assert data["name"] == "CBAM" and data["yaml"].startswith("- [-1, 1, CBAM, [")


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("Halo", "did you mean HaloAttention?"),  # a prefix is a strong match; ECA and BAM are not suggested
        ("HaloAtention", "did you mean HaloAttention?"),
        ("CoordAttention2", "did you mean CoordAtt?"),  # a name that begins what was typed
        ("cbma", "did you mean CBAM?"),  # two letters swapped
        ("SEnetV3", "did you mean SENetV2 or SE?"),  # one slip first, then the name that begins it
        ("attention", "did you mean DAttention?"),  # one letter away; not every *attention module
        ("SpatialAttention", "no catalog name is close"),
        ("xyz", "no catalog name is close"),
    ],
)
def test_unknown_name_suggests_only_close_names(typed, hint):
    expected = f"error: unknown module {typed!r}; {hint} ('attnsurgeon list' shows all {len(REGISTRY.specs())} modules)"
    result = runner.invoke(app, ["info", typed])
    assert result.exit_code == 5 and result.output == expected + "\n", result.output
    result = runner.invoke(app, ["insert", "yolo11n.yaml", "-m", typed, "-a", "8", "--no-verify"])
    assert result.exit_code == 5 and result.output == expected + "\n", result.output
