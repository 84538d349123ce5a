"""A sweep over a plugin module trains each variant in a fresh process (issue 26): the variant YAMLs in the sweep
folder list the plugin files their rows need, and the base copy lists the base's own, named again relative to the
sweep folder; the training process adds them first, so the sweep's own entries outside its folder are used on purpose.
A real ``--train`` run on the tiny synthetic data set of test_sweep_train."""

from __future__ import annotations

import json

from plugin_files import gate_plugin
from test_hostile_plugins import PLAIN
from test_sweep_train import TRAIN, make_dataset
from typer.testing import CliRunner

from attnsurgeon.cli import app

runner = CliRunner()


def test_plugin_variants_and_a_plugin_base_train_in_fresh_processes(tmp_path, monkeypatch, clean_registry):
    monkeypatch.chdir(tmp_path)
    data = make_dataset(tmp_path / "data")
    (tmp_path / "models" / "plugins").mkdir(parents=True)
    (tmp_path / "models" / "plugins" / "gate.py").write_text(gate_plugin())
    (tmp_path / "plain.py").write_text(PLAIN)
    made = runner.invoke(
        app,
        ["insert", "yolo11n.yaml", "-m", "TestGate", "-a", "4", "--plugin", "models/plugins/gate.py", "--no-verify",
         "-o", "models/base-n.yaml"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    args = ["sweep", "models/base-n.yaml", "-m", "plain.py:Gate,SE", "--at", "9", "-o", "out", "--train", str(data)]
    result = runner.invoke(app, [*args, *TRAIN, "--no-plots", "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads((tmp_path / "out" / "results.json").read_text())["rows"]}
    assert sorted(rows) == ["base-n", "base-n-Gate-after9", "base-n-SE-after9"]
    assert {n: r.get("train_status") for n, r in rows.items()} == dict.fromkeys(rows, "ok"), rows
    base = (tmp_path / "out" / "base-n.yaml").read_text()
    assert "attnsurgeon_plugins: [../models/plugins/gate.py]" in base  # named again from the sweep folder
    variant = (tmp_path / "out" / "base-n-Gate-after9.yaml").read_text()
    assert "attnsurgeon_plugins: [../models/plugins/gate.py, ../plain.py:Gate]" in variant
