"""Surgery on .pt checkpoints: weights moved to their new indices, identity-initialised inserts, bad inputs.

Checkpoints are made here, offline: a model built from a packaged YAML and saved the way Ultralytics saves it
(``YOLO(yaml).save(path)``, float16), or a dict with the keys a trainer's ``last.pt`` has mid-training.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.core.yamlfile import model_doc
from attnsurgeon.errors import CheckpointError, ModelFileError, OutputError, UsageError
from attnsurgeon.ops import surgery as api
from attnsurgeon.ops import weights
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
AFTER = 8  # yolo11: C3k2 before SPPF; layers 9.. move down by one, the head's Concat/Detect inputs are renumbered


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """yolo11n with random weights, saved by Ultralytics' own ``Model.save`` (float16, ema None)."""
    from ultralytics import YOLO

    ultra.register()
    path = tmp_path_factory.mktemp("ckpt") / "yolo11n.pt"
    with ultra.quiet():
        model = YOLO("yolo11n.yaml")
    torch.manual_seed(1)
    with torch.no_grad():  # BatchNorm statistics that are not the defaults, so a lost buffer would show
        for m in model.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def trainer_style(saved, tmp_path_factory) -> Path:
    """A checkpoint with the keys BaseTrainer.save_model writes mid-training: model None, the EMA, optimizer state."""
    ckpt = load(saved)
    ema = ckpt["model"]
    optimizer = torch.optim.SGD([p for p in ema.float().parameters()], lr=0.01, momentum=0.9)
    ema.half()
    path = tmp_path_factory.mktemp("trainer") / "last.pt"
    torch.save(
        {
            "epoch": 3,
            "best_fitness": 0.25,
            "stopper": {"best_fitness": 0.25, "best_epoch": 2},
            "model": None,
            "ema": ema,
            "updates": 120,
            "modelopt": None,
            "optimizer": optimizer.state_dict(),
            "scaler": {},
            "train_args": {"model": "yolo11n.yaml", "data": "coco8.yaml", "epochs": 10, "imgsz": 640},
            "train_metrics": {"metrics/mAP50(B)": 0.1, "fitness": 0.25},
            "train_results": {},
            "date": "2026-01-01T00:00:00",
            "version": "8.4.0",
            "license": "AGPL-3.0",
            "docs": "https://docs.ultralytics.com",
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def identity_out(saved, tmp_path_factory):
    """One verified identity-initialised surgery, shared by the tests that inspect its result."""
    out = tmp_path_factory.mktemp("identity") / "yolo11n-SE.pt"
    before = digest(saved)
    report = api.insert(saved, "SE", after=AFTER, output=out, identity_init=True, imgsz=64)
    assert digest(saved) == before
    return report, out


# --------------------------------------------------------------------------------------------------------------------
# Weights move to their new indices


def test_every_original_tensor_moves_to_its_new_index(saved, tmp_path):
    out = tmp_path / "moved.pt"
    report = api.insert_checkpoint(saved, "CBAM", after=[4, AFTER], output=out, verify=False)
    assert [i["index"] for i in report.inserted] == [5, 10]
    old = load(saved)["model"].state_dict()
    new = load(out)["model"].state_dict()
    index_map = {i: i + (i > 4) + (i > AFTER) for i in range(24)}
    for key, tensor in old.items():
        layer, rest = re.match(r"model\.(\d+)\.(.+)", key).groups()
        moved = new[f"model.{index_map[int(layer)]}.{rest}"]
        assert moved.dtype == tensor.dtype and torch.equal(moved, tensor), key
    inserted = [k for k in new if k.startswith(("model.5.", "model.10."))]
    assert inserted and len(new) == len(old) + len(inserted)
    assert out.with_suffix(".yaml").is_file()


def test_output_checkpoint_keeps_the_input_keys_and_resets_trainer_state(trainer_style, tmp_path):
    out = tmp_path / "last-SE.pt"
    before = digest(trainer_style)
    api.insert_checkpoint(trainer_style, "SE", after=AFTER, output=out, verify=False)
    assert digest(trainer_style) == before
    src, dst = load(trainer_style), load(out)
    assert set(src) <= set(dst) and set(dst) - set(src) == {"attnsurgeon"}
    assert dst["ema"] is None and dst["optimizer"] is None and dst["epoch"] == -1 and dst["updates"] is None
    assert dst["train_args"] == src["train_args"] and dst["train_metrics"] == src["train_metrics"]
    assert dst["model"].yaml["backbone"][AFTER + 1][2] == "SE"
    assert next(dst["model"].parameters()).dtype == torch.float16
    assert dst["attnsurgeon"]["inserted"] == [{"after": AFTER, "index": AFTER + 1}]
    # the EMA's weights (what a trainer checkpoint's model is) moved
    old, new = src["ema"].state_dict(), dst["model"].state_dict()
    assert torch.equal(old["model.10.cv1.conv.weight"], new["model.11.cv1.conv.weight"])
    assert torch.equal(old["model.23.cv2.0.0.bn.running_var"], new["model.24.cv2.0.0.bn.running_var"])


def test_yaml_beside_the_checkpoint_rebuilds_the_same_module_tree(identity_out):
    from ultralytics import YOLO

    _, out = identity_out
    yaml_path = out.with_suffix(".yaml")
    text = yaml_path.read_text()
    assert "- [-1, 1, IdentityInit, [SE, [16]]] # 9" in text
    doc = model_doc.load(yaml_path)
    rebuilt = ultra.build_model(doc.plain(), "n", yaml_path.name)
    with ultra.quiet():
        loaded = YOLO(out).model
    tree = [(n, type(m).__name__) for n, m in rebuilt.named_modules()]
    assert tree == [(n, type(m).__name__) for n, m in loaded.named_modules()]
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in loaded.state_dict().items()}


# --------------------------------------------------------------------------------------------------------------------
# Identity initialisation


def test_identity_init_outputs_equal_the_original(saved, identity_out):
    from ultralytics import YOLO

    report, out = identity_out
    checks = {c.name: c for c in report.checks}
    assert checks["identity at init"].ok, checks["identity at init"].detail
    assert checks["train step"].ok, checks["train step"].detail
    assert report.verified and report.costs["n"][1].params > report.costs["n"][0].params
    with ultra.quiet():
        original, surgered = YOLO(saved).model.eval(), YOLO(out).model.eval()
    x = torch.rand(2, 3, 320, 320, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        a, b = original(x), surgered(x)
    assert (a[0] - b[0]).abs().max().item() < 1e-5
    assert surgered.model[AFTER + 1].gamma.item() == 0.0


def test_identity_init_training_moves_away_from_the_identity(identity_out):
    from ultralytics import YOLO

    from attnsurgeon.checks import verify

    _, out = identity_out
    with ultra.quiet():
        model = YOLO(out).model.float()
    model.args = ultra._default_args()
    for p in model.parameters():
        p.requires_grad_(True)
    layer = model.model[AFTER + 1]
    inner = [p for p in layer.inner.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = verify.synthetic_batch(model, 64)
    model.train()

    def step() -> None:
        opt.zero_grad()
        loss, _ = model.loss(batch)
        loss.sum().backward()
        opt.step()

    start = [p.detach().clone() for p in inner]
    step()  # step 0: only the gate has a gradient
    assert layer.gamma.item() != 0.0
    assert all(torch.equal(p, s) for p, s in zip(inner, start, strict=True))
    step()  # from the second step the inner module trains
    assert any(not torch.equal(p, s) for p, s in zip(inner, start, strict=True))


def test_identity_init_yaml_insert_verifies(tmp_path):
    out = tmp_path / "yolo11n-ECA.yaml"
    report = api.insert("yolo11n.yaml", "ECA", after=AFTER, output=out, identity_init=True, imgsz=64)
    assert report.verified, [c.as_dict() for c in report.checks]
    assert re.search(r"- \[-1, 1, IdentityInit, \[ECA, \[[^]]*\]\]\] # 9", out.read_text())
    model = ultra.build_model(model_doc.load(out).plain(), "n", out.name)
    assert type(model.model[AFTER + 1].inner).__name__ == "ECA"


def test_plain_insert_is_freshly_initialised(saved, tmp_path):
    out = tmp_path / "yolo11n-GC.pt"
    api.insert_checkpoint(saved, "GC", after=4, output=out, verify=False)
    a, b = load(saved)["model"].float().eval(), load(out)["model"].float().eval()
    assert b.yaml["backbone"][5][2] == "GC"
    assert weights.max_output_difference(a, b, 64) > 1e-3  # a fresh layer changes the outputs


# --------------------------------------------------------------------------------------------------------------------
# Bad inputs: one clear error, nothing written, the input untouched


def _bad_file(kind: str, saved: Path, path: Path) -> None:
    if kind == "random bytes":
        path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).byte().numpy())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated zip":
        data = saved.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "plain state dict":
        torch.save(load(saved)["model"].state_dict(), path)
    elif kind == "dict without model":
        torch.save({"epoch": 3, "train_args": {}}, path)
    elif kind == "model is a state dict":
        torch.save({"model": load(saved)["model"].state_dict(), "train_args": {}}, path)
    elif kind == "missing tensors":
        ckpt = load(saved)
        ckpt["model"].model[3].bn = torch.nn.Identity()
        torch.save(ckpt, path)
    elif kind == "a tensor":
        torch.save(torch.zeros(3), path)


BAD = {
    "random bytes": "empty, truncated, corrupted or not a PyTorch file",
    "empty": "empty, truncated, corrupted or not a PyTorch file",
    "truncated zip": "empty, truncated, corrupted or not a PyTorch file",
    "plain state dict": "plain state dict",
    "dict without model": "no 'model' or 'ema' entry",
    "model is a state dict": "'model' entry is a state dict",
    "missing tensors": "missing: model.3.bn.weight",
    "a tensor": "holds a Tensor",
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_checkpoint_is_one_clear_error(kind, saved, tmp_path):
    src = tmp_path / "bad.pt"
    _bad_file(kind, saved, src)
    before = digest(src)
    with pytest.raises(CheckpointError) as info:
        api.insert_checkpoint(src, "SE", after=AFTER, output=tmp_path / "out.pt", verify=False)
    message = str(info.value)
    assert BAD[kind] in message and "\n" not in message and str(src) in message
    assert digest(src) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


@pytest.mark.parametrize("kind", ["random bytes", "plain state dict", "missing tensors"])
def test_cli_bad_checkpoint_exits_with_the_checkpoint_code(kind, saved, tmp_path):
    src = tmp_path / "bad.pt"
    _bad_file(kind, saved, src)
    result = runner.invoke(app, ["insert", str(src), "-m", "SE", "-a", str(AFTER), "-o", str(tmp_path / "o.pt")])
    assert result.exit_code == CheckpointError.exit_code, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and BAD[kind] in lines[0], result.output


def test_missing_file_and_wrong_output_suffix(saved, tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        api.insert_checkpoint(tmp_path / "nope.pt", "SE", after=AFTER, verify=False)
    with pytest.raises(UsageError, match=r"must be a \.pt file"):
        api.insert_checkpoint(saved, "SE", after=AFTER, output=tmp_path / "x.yaml", verify=False)
    with pytest.raises(UsageError, match="--scale"):
        api.insert_checkpoint(saved, "SE", after=AFTER, output=tmp_path / "x.pt", scale="s", verify=False)


def test_existing_output_needs_force_and_input_is_never_the_output(saved, tmp_path):
    out = tmp_path / "yolo11n-SE.pt"
    out.write_bytes(b"keep")
    with pytest.raises(OutputError, match="--force"):
        api.insert_checkpoint(saved, "SE", after=AFTER, output=out, verify=False)
    assert out.read_bytes() == b"keep"
    out.with_suffix(".yaml").write_text("keep")
    api.insert_checkpoint(saved, "SE", after=AFTER, output=out, verify=False, force=True)
    assert load(out)["model"].yaml["backbone"][AFTER + 1][2] == "SE"
    with pytest.raises(OutputError, match="input"):
        api.insert_checkpoint(saved, "SE", after=AFTER, output=saved, verify=False, force=True)


def test_bad_surgery_target_on_a_checkpoint(saved, tmp_path):
    from attnsurgeon.errors import SurgeryError

    with pytest.raises(SurgeryError, match="head"):
        api.insert_checkpoint(saved, "SE", after=23, output=tmp_path / "x.pt", verify=False)


# --------------------------------------------------------------------------------------------------------------------
# The CLI over it


def test_cli_checkpoint_insert_writes_pt_and_yaml(saved, tmp_path):
    out = tmp_path / "yolo11n-ECA.pt"
    before = digest(saved)
    result = runner.invoke(
        app, ["insert", str(saved), "-m", "ECA", "-a", "6", "-o", str(out), "--identity-init", "--no-verify"]
    )
    assert result.exit_code == 0, result.output
    flat = "".join(result.output.split())  # Rich may fold a long path
    assert f"wrote{out}" in flat and f"wrote{out.with_suffix('.yaml')}" in flat
    assert digest(saved) == before
    assert load(out)["attnsurgeon"]["identity_init"] is True


def test_move_weights_rejects_a_shape_change():
    cfg = model_doc.load("yolo11n.yaml").plain()
    coco = ultra.build_model(cfg, "n")
    three = ultra.build_model({**copy.deepcopy(cfg), "nc": 3}, "n")
    with pytest.raises(CheckpointError, match="another shape"):
        weights.move_weights(coco, three, {i: i for i in range(len(coco.model))}, [])
