"""cam on a tiny model trained here on the synthetic squares-and-bars data set (test_sweep_train.make_dataset), and
--attention-map on CBAM's own spatial gate."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.figures import cam as cam_mod

runner = CliRunner()
SIZE = 64


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """best.pt of yolo11n trained 2 epochs at 64 px, and its variant with CBAM after layers 8 and 16."""
    from test_sweep_train import make_dataset
    from ultralytics import YOLO

    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    ultra.register()
    root = tmp_path_factory.mktemp("trained")
    data = make_dataset(root / "data", 16, 4, SIZE)
    with ultra.quiet():
        model = YOLO("yolo11n.yaml")
        model.train(data=str(data), epochs=2, imgsz=SIZE, batch=8, device="cpu", workers=0, project=str(root),
                    name="run", plots=False, val=False, amp=False, verbose=False)  # fmt: skip
    base = root / "run" / "weights" / "last.pt"
    api.insert_checkpoint(base, "CBAM", after=[8, 16], output=root / "var.pt", verify=False)
    images = sorted((root / "data" / "images" / "val").glob("*.jpg"))[:3]
    return base, root / "var.pt", images


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradcam", "eigencam", "layercam"])
def test_trained_maps(trained, tmp_path, method):
    base, var, images = trained
    r = cam_mod.cam(base, var, images, tmp_path / "o", method=method, imgsz=SIZE)
    flat = [(key, i) for i, m in enumerate(r.maps) for key in ("base", "variant") if not m[key].max() > m[key].min()]
    assert all(np.isfinite(m[key]).all() for m in r.maps for key in ("base", "variant"))
    if method == "gradcam" and flat:
        # two epochs at 64 px: class scores ~0.01, and Grad-CAM's channel-weighted sum can be negative everywhere;
        # then the map is constant and said so (eigencam and layercam below must show structure)
        assert any("the gradcam map is constant on" in w for w in r.warnings), r.warnings
        return
    assert not flat, flat
    assert not np.allclose(r.maps[0]["base"], r.maps[1]["base"])
    assert any(not np.allclose(m["base"], m["variant"], rtol=1e-3, atol=1e-7) for m in r.maps)
    assert len(r.files) == 4 and all(f.stat().st_size > 0 for f in r.files)


def test_attention_map_is_cbams_gate(tmp_path, one_thread):
    """CBAM's spatial gate: the panel equals sigmoid(spatial conv) of the layer's input, min-max scaled."""
    import torch
    from PIL import Image
    from ultralytics import YOLO

    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    ultra.register()
    torch.manual_seed(0)  # the same weights whatever ran before in this worker: the map's ranking depends on them
    with ultra.quiet():
        YOLO("yolo11n.yaml").save(tmp_path / "base.pt")
    api.insert_checkpoint(tmp_path / "base.pt", "CBAM", after=8, output=tmp_path / "var.pt", verify=False)
    rng = np.random.default_rng(0)
    img = tmp_path / "a.png"
    Image.fromarray(rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)).save(img)
    r = cam_mod.cam(tmp_path / "base.pt", tmp_path / "var.pt", [img], tmp_path / "o", method="eigencam", layer="new",
                    imgsz=SIZE, attention_map=True)  # fmt: skip
    own = r.maps[0]["attention"]
    assert own.shape == (SIZE, SIZE) and own.min() == 0 and abs(own.max() - 1) < 1e-6
    written = np.asarray(Image.open(r.files[0]))
    assert written.shape[1] == 4 * SIZE + 3 * 4  # four panels
    # recompute the gate from the layer's output the hook saw: sigmoid is monotonic, so the ranking must agree
    model = cam_mod.load(tmp_path / "var.pt").model
    seen = {}
    model.model[9].spatial.register_forward_hook(lambda m, i, o: seen.setdefault("gate", o))
    with torch.no_grad():
        model(torch.from_numpy(r.maps[0]["image"]).permute(2, 0, 1)[None].float() / 255)
    gate = seen["gate"][0, 0]
    h, w = gate.shape  # the panel is the gate upsampled: its mean over each cell is that cell's value, rescaled
    small = own.reshape(h, SIZE // h, w, SIZE // w).mean(axis=(1, 3))
    assert np.corrcoef(small.ravel(), gate.numpy().ravel())[0, 1] > 0.98


def test_attention_map_of_a_module_without_one(tmp_path, one_thread):
    from PIL import Image
    from ultralytics import YOLO

    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    ultra.register()
    with ultra.quiet():
        YOLO("yolo11n.yaml").save(tmp_path / "base.pt")
    api.insert_checkpoint(tmp_path / "base.pt", "SE", after=8, output=tmp_path / "var.pt", verify=False)
    Image.new("RGB", (SIZE, SIZE)).save(tmp_path / "a.png")
    args = ["cam", str(tmp_path / "base.pt"), str(tmp_path / "var.pt"), str(tmp_path / "a.png"), "-o",
            str(tmp_path / "o"), "--imgsz", str(SIZE), "--layer", "new", "--attention-map"]  # fmt: skip
    args += ["--method", "eigencam"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: --attention-map: layer 9 (SE) of var.pt computes no attention map of its own")
    assert "modules with one: CBAM, CrissCrossAttention, GC, HaloAttention, Ultralytics' PSA/C2PSA" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
