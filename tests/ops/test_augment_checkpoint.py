"""``augment`` on a trained checkpoint: train yolo11n a step, save it as Ultralytics does, augment the .pt, load it,
outputs unchanged with --identity-init, every tensor of the blocks kept, and it trains again."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_augment import attention_params  # the test folders are on sys.path (pyproject)
from typer.testing import CliRunner

from attnsurgeon.catalog import REGISTRY
from attnsurgeon.checks import verify
from attnsurgeon.cli import app
from attnsurgeon.errors import CheckpointError, SurgeryError, UsageError
from attnsurgeon.ops import augment as api_augment
from attnsurgeon.ultralytics_bridge import ultra

runner = CliRunner()
AT = [2, 6, 10]  # C3k2 (Bottleneck form at n), C3k2 with C3k (c3k=True), C2PSA


def train_step(model: torch.nn.Module, lr: float = 0.01) -> float:
    """One SGD step with the model's own Ultralytics loss on a synthetic batch."""
    model.args = ultra._default_args()  # the hyper-parameters a trainer gives the model before its loss
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss, _ = model.loss(verify.synthetic_batch(model, 64))
    loss.sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    model.criterion = None  # as a trainer's checkpoint: no loss object inside
    return float(loss.sum().detach())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """yolo11n trained one step and saved by Ultralytics' own Model.save (float16)."""
    from ultralytics import YOLO

    ultra.register()
    path = tmp_path_factory.mktemp("trained") / "yolo11n.pt"
    torch.manual_seed(0)
    with ultra.quiet():
        model = YOLO("yolo11n.yaml")
    train_step(model.model)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def augmented(trained, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("augmented") / "yolo11n-C3k2_EMA.pt"
    report = api_augment.augment(trained, "EMA", AT, [8], output=out, identity_init=True, imgsz=64)
    return out, report


def loaded(path: Path) -> torch.nn.Module:
    from ultralytics import YOLO

    return YOLO(str(path)).model.float().eval()


def test_checks_prove_weights_kept_and_identity(augmented):
    _, report = augmented
    checks = {c.name: c for c in report.checks}
    assert all(c.ok for c in report.checks), [(c.name, c.detail) for c in report.checks]
    assert {"block kept", "weights moved", "identity at init", "train step"} <= set(checks)
    # channels at n: C3k2 [256, False, 0.25] -> one Bottleneck at 16; C3k2 [512, True] -> one C3k, two at 32;
    # C2PSA [1024] -> one PSABlock at 128. Each attention is IdentityInit(EMA): EMA's params plus the gate.
    gated = {c: attention_params("EMA", [8], c) + 1 for c in (16, 32, 128)}
    assert report.attention == {
        "n": {2: {"modules": 1, "params": gated[16]}, 6: {"modules": 2, "params": 2 * gated[32]},
              10: {"modules": 1, "params": gated[128]}}
    }  # fmt: skip
    assert [row["index"] for row in report.augmented] == AT


def test_every_tensor_of_the_checkpoint_loads_unchanged(trained, augmented):
    out, _ = augmented
    base, new = loaded(trained).state_dict(), loaded(out).state_dict()
    for key, value in base.items():
        assert key in new and new[key].shape == value.shape and torch.equal(new[key], value), key
    extra = set(new) - set(base)
    assert extra and all(".attn." in k for k in extra)
    attention = [k for k in extra if k.endswith(".gamma")]
    assert len(attention) == 1 + 2 + 1  # one IdentityInit gate per attention: 2 (n=1), 6 (one C3k, 2), 10 (one PSA)


def test_outputs_equal_the_trained_model_and_it_trains_again(trained, augmented):
    out, _ = augmented
    base, new = loaded(trained), loaded(out)
    x = torch.rand(1, 3, 128, 160, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        diff = max((a - b).abs().max().item() for a, b in zip(base(x), new(x), strict=False) if torch.is_tensor(a))
    assert diff <= 1e-5
    for p in new.parameters():
        p.requires_grad_(True)
    train_step(new)
    gates = [m.gamma.item() for m in new.modules() if type(m).__name__ == "IdentityInit"]
    assert len(gates) == 4 and all(g != 0.0 for g in gates)  # training moved every gate off the identity


def test_yaml_beside_rebuilds_the_same_tensors(augmented):
    from ultralytics import YOLO

    out, _ = augmented
    with ultra.quiet():
        rebuilt = YOLO(str(out.with_suffix(".yaml"))).model
    shapes = {k: v.shape for k, v in rebuilt.state_dict().items()}
    assert shapes == {k: v.shape for k, v in loaded(out).state_dict().items()}


def test_cli_default_name_and_errors(trained, tmp_path):
    import shutil

    source = tmp_path / "best.pt"
    shutil.copy2(trained, source)
    result = runner.invoke(app, ["augment", str(source), "-m", "SE", "--at", "8", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "best-C3k2_SE.pt").is_file() and (tmp_path / "best-C3k2_SE.yaml").is_file()
    bad = runner.invoke(app, ["augment", str(source), "-m", "SE", "--at", "9", "--no-verify"])
    assert bad.exit_code == SurgeryError.exit_code and "SPPF, which cannot be augmented" in bad.output
    wrong = runner.invoke(app, ["augment", str(source), "-m", "SE", "--at", "8", "-o", str(tmp_path / "x.yaml")])
    assert wrong.exit_code == UsageError.exit_code and "must be a .pt file" in wrong.output
    (tmp_path / "empty.pt").write_bytes(b"")
    empty = runner.invoke(app, ["augment", str(tmp_path / "empty.pt"), "-m", "SE", "--at", "8"])
    assert empty.exit_code == CheckpointError.exit_code


def test_a_plain_augment_of_a_checkpoint_is_freshly_initialised(trained, tmp_path):
    out = tmp_path / "plain.pt"
    report = api_augment.augment(trained, "SE", [4], [4], where="output", output=out, imgsz=64)
    assert all(c.ok for c in report.checks)
    names = [c.name for c in report.checks]
    assert "identity at init" not in names
    base, new = loaded(trained), loaded(out)
    extra = set(new.state_dict()) - set(base.state_dict())
    se = REGISTRY.load_class("SE")(128, 4).state_dict()  # C3k2 [512, False, 0.25] at n outputs 128 channels
    assert extra == {f"model.4.cv2.attn.{k}" for k in se}


@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_plain_ultralytics_loads_it_in_a_fresh_process(augmented, safe_load):
    """The attended convs are on the weights_only allow-list, so ULTRALYTICS_SAFE_LOAD=1 loads the checkpoint too."""
    import json
    import os
    import subprocess
    import sys

    out, _ = augmented
    code = (
        "import json; from ultralytics import YOLO; from ultralytics.nn.tasks import _SafeLoad; "
        f"m = YOLO({str(out)!r}).model; conv = m.model[6].m[0].m[0].cv2; "
        "print(json.dumps([_SafeLoad.restricted(), type(conv).__name__, type(conv.attn.inner).__name__]))"
    )
    env = {**os.environ, "ULTRALYTICS_SAFE_LOAD": safe_load, "YOLO_OFFLINE": "1"}
    env.pop("ATTNSURGEON_AUTOLOAD", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [safe_load == "1", "AttendedConv", "EMA"]


@pytest.mark.slow
def test_ultralytics_trainer_round_trip(tmp_path):
    """Ultralytics' own trainer: train yolo11n, augment its last.pt with identity init (the CLI), train that again
    in a fresh process; the gates move off the identity and the blocks' trained tensors were the starting point."""
    import subprocess
    import sys

    from test_interop import make_dataset, ok, python, train_overrides

    data = make_dataset(tmp_path / "data")
    overrides = train_overrides(data, tmp_path / "runs1")
    ok(python(f"from ultralytics import YOLO; YOLO('yolo11n.yaml').train(**{overrides!r})", tmp_path, timeout=600))
    last = tmp_path / "runs1" / "run" / "weights" / "last.pt"
    out = tmp_path / "last-C3k2_EMA.pt"
    argv = ["augment", str(last), "-m", "EMA", "--at", "2", "--at", "6", "--args", "[8]", "--identity-init"]
    cli = [sys.executable, "-m", "attnsurgeon", *argv, "--imgsz", "64", "-o", str(out)]
    done = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identity at init" in done.stdout and out.is_file()
    overrides = train_overrides(data, tmp_path / "runs2")
    ok(python(f"from ultralytics import YOLO; YOLO({str(out)!r}).train(**{overrides!r})", tmp_path, timeout=600))
    trained = torch.load(tmp_path / "runs2" / "run" / "weights" / "last.pt", weights_only=False)["model"]
    gates = [m.gamma.item() for m in trained.modules() if type(m).__name__ == "IdentityInit"]
    assert len(gates) == 3 and all(g != 0.0 for g in gates)


def test_without_the_hook_an_augment_row_fails_loudly(augmented):
    """Never a silent plain block: without registration Ultralytics cannot resolve the Augment row at all."""
    import os
    import subprocess
    import sys

    out, _ = augmented
    code = f"from ultralytics import YOLO; YOLO({str(out.with_suffix('.yaml'))!r})"
    env = {**os.environ, "ATTNSURGEON_AUTOLOAD": "0", "YOLO_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0 and "KeyError: 'Augment'" in done.stderr


def test_identity_init_yaml_row_and_verification(tmp_path):
    out = tmp_path / "yolo11n-C3k2_EMA.yaml"
    report = api_augment.augment("yolo11n.yaml", "EMA", [4], [8], output=out, identity_init=True, imgsz=64)
    assert all(c.ok for c in report.checks), [(c.name, c.detail) for c in report.checks]
    assert "- [-1, 2, Augment, [C3k2, [512, False, 0.25], IdentityInit, [EMA, [8]], bottleneck]]" in out.read_text()
    assert report.attention["n"][4]["params"] == attention_params("EMA", [8], 32) + 1  # EMA and its gate
