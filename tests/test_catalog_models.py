"""Every registry entry inside real models: after layers 4, 6 and 8 of yolo11n and yolov8n, at scales n and s,
the model builds, runs at 640x640 and 480x640, and trains one step with every inserted parameter learning."""

from __future__ import annotations

import pytest

from attnsurgeon import graph, ultra, verify, yamlio
from attnsurgeon.catalog import REGISTRY

NAMES = REGISTRY.names()


@pytest.fixture(scope="module")
def docs():
    return {name: yamlio.load(name) for name in ("yolo11n.yaml", "yolov8n.yaml")}


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["n", "s"])
@pytest.mark.parametrize("model", ["yolo11n.yaml", "yolov8n.yaml"])
@pytest.mark.parametrize("name", NAMES)
def test_module_in_model(docs, name, model, scale):
    doc = docs[model]
    result = graph.insert(doc.graph, [4, 6, 8], name, REGISTRY.get(name).defaults())
    cfg = yamlio.to_plain(yamlio.apply(doc, result))
    built = ultra.build_model(cfg, scale, f"{model[:-5]}-{name}.yaml")
    new_layers = [i.index for i in result.insertions]
    assert [type(built.model[i]).__name__ for i in new_layers] == [REGISTRY.load_class(name).__name__] * 3
    for size in ((640, 640), (480, 640)):
        check = verify.check_forward(built, size)
        assert check.ok, check.detail
    check = verify.check_train_step(built, new_layers, 320, {})
    assert check.ok, check.detail
