"""attnsurgeon cam: heat maps are finite, not constant, follow the input, differ between base and variant; the PNGs
hold exactly the panels computed (arrays, not pixels); bad input is a one-line error and nothing is written."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from attnsurgeon.cli import app
from attnsurgeon.figures import cam as cam_mod
from attnsurgeon.figures.panels import GAP, overlay, side_by_side

runner = CliRunner()
SIZE = 96


def _images(root, n=2, seed=0):
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = Image.new("RGB", (SIZE + 32, SIZE), tuple(int(v) for v in rng.integers(0, 60, 3)))
        x, y = int(rng.integers(0, SIZE - 40)), int(rng.integers(0, SIZE - 40))
        ImageDraw.Draw(img).rectangle([x, y, x + 36, y + 30], fill=(230, 40, 40))
        paths.append(root / f"im{seed}-{i}.png")
        img.save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory, one_thread):
    """A base checkpoint (yolo11n, seeded random weights, BatchNorm statistics set) and the variant with CBAM after
    layer 8 (its own random weights), as insert_checkpoint writes it."""
    import torch
    from ultralytics import YOLO

    from attnsurgeon.ops import surgery as api
    from attnsurgeon.ultralytics_bridge import ultra

    ultra.register()
    root = tmp_path_factory.mktemp("cam")
    torch.manual_seed(0)
    with ultra.quiet():
        model = YOLO("yolo11n.yaml")
    model.save(root / "base.pt")
    torch.manual_seed(1)
    api.insert_checkpoint(root / "base.pt", "CBAM", after=8, output=root / "var.pt", verify=False)
    return root / "base.pt", root / "var.pt", root


def _check_maps(maps):
    for m in maps:
        for key in ("base", "variant"):
            assert m[key].shape == (SIZE, SIZE) and np.isfinite(m[key]).all()
            assert m[key].max() > m[key].min()  # not constant
            assert m[key].min() >= 0 and m[key].max() <= 1


@pytest.mark.parametrize("method", ["gradcam", "eigencam", "layercam"])
def test_maps_follow_the_input_and_differ_between_models(models, tmp_path, method):
    base, var, _ = models
    images = _images(tmp_path, 2, 0)
    r = cam_mod.cam(base, var, images, tmp_path / "out", method=method, layer="heads", imgsz=SIZE)
    assert r.base_layers == [16, 19, 22] and r.variant_layers == [17, 20, 23]
    _check_maps(r.maps)
    assert not np.allclose(r.maps[0]["base"], r.maps[1]["base"])  # another image, another map
    assert not np.allclose(r.maps[0]["base"], r.maps[0]["variant"], rtol=1e-3, atol=1e-7)
    other = cam_mod.cam(base, var, _images(tmp_path, 1, 7), tmp_path / "out2", method=method, layer="new", imgsz=SIZE)
    assert (other.base_layers, other.variant_layers) == ([8], [9])  # CBAM, and the layer it reads in the base
    _check_maps(other.maps)


def test_pngs_hold_the_panels_and_the_grid(models, tmp_path):
    from PIL import Image

    base, var, _ = models
    images = _images(tmp_path, 3, 1)
    r = cam_mod.cam(base, var, images, tmp_path / "out", method="eigencam", layer="4", imgsz=SIZE)
    assert [f.name for f in r.files] == ["im1-0.png", "im1-1.png", "im1-2.png", "grid.png"]
    assert (r.base_layers, r.variant_layers) == ([4], [4])
    rows = []
    for f, m in zip(r.files, r.maps, strict=False):
        written = np.asarray(Image.open(f))
        assert written.shape == (SIZE, 3 * SIZE + 2 * GAP, 3)
        panels = [overlay(m["image"], m[k], m[f"{k}_boxes"]) for k in ("base", "variant")]
        expected = side_by_side(m["image"], *panels, ("image", "base.pt 4 C3k2", "var.pt 4 C3k2"))
        assert np.array_equal(written, expected)
        assert (written[:, SIZE : SIZE + GAP] == 255).all()  # the gap between panels
        assert (m["image"][:10] == 114).all() and (m["image"][-10:] == 114).all()  # letterboxed 128x96 -> 96x96
        rows.append(written)
    grid = np.asarray(Image.open(r.files[-1]))
    assert grid.shape == (3 * SIZE + 2 * GAP, 3 * SIZE + 2 * GAP, 3)
    assert np.array_equal(grid[SIZE + GAP : 2 * SIZE + GAP], rows[1])


def test_cli_json_lists_files_and_refuses_to_overwrite(models, tmp_path):
    base, var, _ = models
    images = [str(p) for p in _images(tmp_path, 1, 2)]
    args = ["cam", str(base), str(var), *images, "-o", str(tmp_path / "out"), "--imgsz", str(SIZE), "--json"]
    r = runner.invoke(app, [*args, "--method", "eigencam"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)
    assert payload["files"] == [str(tmp_path / "out" / "im2-0.png"), str(tmp_path / "out" / "grid.png")]
    before = (tmp_path / "out" / "grid.png").read_bytes()
    r = runner.invoke(app, [*args, "--method", "gradcam"])
    assert r.exit_code == 8 and "already exists; pass --force" in r.stderr  # an OutputError, as every command
    assert (tmp_path / "out" / "grid.png").read_bytes() == before
    assert runner.invoke(app, [*args, "--method", "gradcam", "--force"]).exit_code == 0


def test_yaml_variant_warns_random_weights(models, tmp_path):
    base, _, _ = models
    images = [str(p) for p in _images(tmp_path, 1, 3)]
    r = runner.invoke(app, ["cam", str(base), "yolo11n.yaml", *images, "-o", str(tmp_path / "o"), "--imgsz", "64",
                            "--method", "eigencam"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (
        "yolo11n.yaml: random weights (a YAML, no checkpoint): its heat map means nothing before training" in r.stderr
    )


def test_classification_checkpoint_uses_its_class_score(models, tmp_path):
    from ultralytics import YOLO

    from attnsurgeon.ultralytics_bridge import ultra

    with ultra.quiet():
        YOLO("yolo11n-cls.yaml").save(tmp_path / "cls.pt")
    images = _images(tmp_path, 1, 4)
    r = cam_mod.cam(tmp_path / "cls.pt", tmp_path / "cls.pt", images, tmp_path / "o", layer="8", imgsz=64)
    m = r.maps[0]
    assert m["base"].shape == (64, 64) and np.isfinite(m["base"]).all() and m["base"].max() > m["base"].min()
    assert m["base_boxes"].shape == (1, 6)  # the top class and its score, drawn as a label


NO_LAYER = "--layer 99 is not a feature-map layer of var.pt, which has layers 0 to 23"


def _bad_cases(root, base, var):
    text = root / "notes.png"
    text.write_text("not an image\n")
    img = str(_images(root, 1, 5)[0])
    return [
        ([str(base), str(var), str(text)], 12, f"{text}: not an image (PIL cannot read it)"),
        ([str(base), str(var), str(root / "nope.jpg")], 12, f"{root / 'nope.jpg'}: no such image file"),
        ([str(base), str(var), img, "--layer", "99"], 2, NO_LAYER),
        ([str(base), str(var), img, "--layer", "p9"], 2, "--layer 'p9': give heads, new or a layer index"),
        ([str(base), str(base), img, "--layer", "new"], 2, "--layer new: base.pt has no layer that base.pt does"),
        ([str(base), str(var), img, "--method", "scorecam"], 2, "--method 'scorecam' is not one of gradcam"),
        ([str(base), str(root / "img.jpg"), img], 3, "img.jpg"),
    ]  # fmt: skip


def test_bad_input_is_one_line_and_writes_nothing(models, tmp_path):
    base, var, _ = models
    for args, code, message in _bad_cases(tmp_path, base, var):
        out = tmp_path / "out"
        r = runner.invoke(app, ["cam", "-o", str(out), "--imgsz", "64", "--method", "eigencam", *args])
        assert r.exit_code == code, (args, r.output)
        assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert not out.exists()


def test_without_grad_cam_the_install_command(models, tmp_path, monkeypatch):
    base, var, _ = models
    monkeypatch.setitem(sys.modules, "pytorch_grad_cam", None)
    r = runner.invoke(app, ["cam", str(base), str(var), str(_images(tmp_path, 1, 6)[0]), "-o", str(tmp_path / "o")])
    assert r.exit_code == 13
    assert r.stderr.strip() == (
        "error: attnsurgeon cam needs the grad-cam package: pip install 'attnsurgeon[cam]' (or: pip install grad-cam)"
    )
    assert not (tmp_path / "o").exists()


def test_thin_projection_is_grad_cams():
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    a = np.random.default_rng(0).normal(size=(2, 16, 12, 10)).astype(np.float32)
    ours, theirs = cam_mod._projection(a), get_2d_projection(a)
    for x, y in zip(ours, theirs, strict=True):  # a principal component's sign is arbitrary
        assert np.allclose(x, y, atol=1e-4) or np.allclose(x, -y, atol=1e-4)


def test_one_pass_over_the_batch_gives_each_images_own_full_backward_maps(models, tmp_path):
    """The batched pass whose backward stops at the first target layer gives, per image and layer, the map of
    grad-cam used the plain way: one image, one layer, gradients all the way to the input. (On these random weights
    the maps are small: grad-cam scales by max + 1e-7.)"""
    import torch
    from pytorch_grad_cam import GradCAM

    base, _, _ = models
    loaded = cam_mod.load(base)
    boxed = cam_mod.letterbox([cam_mod.read_image(p) for p in _images(tmp_path, 2, 8)], SIZE)
    batch = torch.from_numpy(np.stack(boxed)).permute(0, 3, 1, 2).float().div(255)
    layers = [16, 19, 22]
    maps, _ = cam_mod.heat_maps(loaded, layers, batch, 0.25, "gradcam")
    assert maps.shape == (2, 3, SIZE, SIZE)
    loaded.model.requires_grad_(True)
    for n in range(2):
        for k, i in enumerate(layers):
            one = batch[n : n + 1].clone().requires_grad_(True)
            with GradCAM(cam_mod.scores_module(loaded.model), [loaded.model.model[i]]) as plain:
                expected = plain(one, [cam_mod.Target("detect", 0.25)])[0]
            ours = cam_mod.mean_map(maps[n : n + 1, [k]])[0]  # a panel of one layer: grad-cam's aggregation
            assert np.allclose(ours, expected, rtol=1e-3, atol=1e-5 * expected.max()), (n, i)


def test_layer_new_shows_each_new_layer_next_to_the_base_at_its_place(models, tmp_path):
    from PIL import Image

    from attnsurgeon.ops import surgery as api

    base, _, root = models
    two = root / "two.pt"
    if not two.exists():
        api.insert_checkpoint(base, "CBAM", after=[4, 8], output=two, verify=False)
    r = cam_mod.cam(base, two, _images(tmp_path, 2, 9), tmp_path / "o", method="layercam", layer="new", imgsz=SIZE)
    assert (r.base_layers, r.variant_layers) == ([4, 8], [5, 10])
    for m in r.maps:
        pairs = m["layers"]
        assert [(p["base_layers"], p["variant_layers"]) for p in pairs] == [([4], [5]), ([8], [10])]
        assert not np.allclose(pairs[0]["variant"], pairs[1]["variant"])  # each new layer its own map
        assert not np.allclose(pairs[0]["base"], pairs[1]["base"])
        _check_maps(pairs)
    written = np.asarray(Image.open(r.files[0]))
    assert written.shape == (SIZE, 5 * SIZE + 4 * GAP, 3)  # image, then base | variant per new layer
    m, pairs = r.maps[0], r.maps[0]["layers"]
    panels = [overlay(m["image"], p[k], m[f"{k}_boxes"]) for p in pairs for k in ("base", "variant")]
    titles = ("image", "base.pt 4 C3k2", "two.pt 5 CBAM", "base.pt 8 C3k2", "two.pt 10 CBAM")
    assert np.array_equal(written, side_by_side(m["image"], *panels, titles))
