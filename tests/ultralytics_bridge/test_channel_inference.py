"""Input channels are read from Ultralytics' parse_model (its locals ``ch`` and ``f``, through stack frames).

These tests pin that assumption on the installed Ultralytics (single and repeated rows, a multi-input ``from``) and
show that a changed Ultralytics is a clear error, never a silent shift of the YAML's hyper-parameters into ``c1``
(``[SimAM, [0.01]]`` building with ``c1=0.01``).
"""

from __future__ import annotations

import importlib.metadata
import inspect

import pytest
import torch
from ultralytics.nn import tasks

from attnsurgeon.errors import RegistryError
from attnsurgeon.ultralytics_bridge import parse_hooks, ultra

VERSION = importlib.metadata.version("ultralytics")


def classifier(*rows: list) -> dict:
    """A tiny Ultralytics classification model: Conv 3->16 (stride 2), Conv 16->32, the rows, Classify."""
    return {
        "nc": 10,
        "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Conv", [32, 3, 2]], *rows],
        "head": [[-1, 1, "Classify", ["nc"]]],
    }


def test_parse_model_is_what_the_resolver_reads():
    """The facts channel inference relies on, in the installed Ultralytics."""
    ultra.register()
    original = inspect.unwrap(tasks.parse_model)
    code = original.__code__
    assert {"ch", "f", "m", "args"} <= {*code.co_varnames, *code.co_cellvars}  # m, args: read by the genexpr
    assert parse_hooks.PARSE_MODEL_CODE[0] is code
    # every model class calls parse_model by its module-global name, so the plugin-loading wrapper sees each build
    for builder in (tasks._initialize_yolo_model, tasks.ClassificationModel._from_yaml):
        assert "parse_model" in builder.__code__.co_names, builder


@pytest.mark.parametrize("repeats", [1, 3])
def test_channels_of_single_and_repeated_rows(repeats):
    model = ultra.build_model(classifier([-1, repeats, "SimAM", [0.01]], [-1, repeats, "SE", [4]], [0, 1, "ECA", []]))
    simam, se, eca = model.model[2], model.model[3], model.model[4]
    layers = list(se) if repeats > 1 else [se]
    assert len(layers) == repeats  # repeats > 1: parse_model builds them in a generator expression
    assert all(layer.fc[0].in_features == 32 and layer.fc[0].out_features == 8 for layer in layers)
    simams = list(simam) if repeats > 1 else [simam]
    assert all(s.e_lambda == 0.01 for s in simams)  # the hyper-parameter, not c1
    assert type(eca).__name__ == "ECA"  # from an absolute index (layer 0, 16 channels): builds and runs
    with torch.no_grad():
        assert eca(torch.zeros(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_multi_input_from_is_a_clear_error():
    with pytest.raises(RegistryError) as err:
        ultra.build_model(classifier([[0, 1], 1, "SE", []]))
    assert str(err.value) == (
        "layer 2 (SE): an attention layer reads one feature map, but its 'from' is [0, 1]; use a single index"
    )
    ultra.register()
    original = inspect.unwrap(tasks.parse_model)
    with pytest.raises(TypeError, match="list indices must be integers"):
        original(classifier([[0, 1], 1, "SE", []]), 3, verbose=False)


@pytest.fixture
def parse_model_code():
    """Lets a test stand in another parse_model for the one the resolver recognises; restored afterwards."""
    ultra.register()
    saved = parse_hooks.PARSE_MODEL_CODE[0]

    def use(code) -> None:
        parse_hooks.PARSE_MODEL_CODE[0] = code

    yield use
    parse_hooks.PARSE_MODEL_CODE[0] = saved


def test_a_moved_constructor_call_is_a_loud_error(parse_model_code):
    """If Ultralytics moved the m(*args) call out of parse_model, building fails loudly instead of c1=0.01."""
    parse_model_code((lambda: None).__code__)
    with pytest.raises(RegistryError) as err:
        tasks.ClassificationModel(classifier([-1, 1, "SimAM", [0.01]]), verbose=False)  # as YOLO() builds it
    assert str(err.value) == (
        f"cannot infer input channels with Ultralytics {VERSION}; supported: {parse_hooks.supported_ultralytics()} "
        "(parse_model() in ultralytics/nn/tasks.py builds the layer, not the parse_model whose locals attnsurgeon "
        "reads); install a supported Ultralytics or pass c1 yourself"
    )


def test_renamed_locals_are_a_loud_error(parse_model_code):
    """A parse_model whose ``ch``/``f`` mean something else (here: renamed away) is an error naming the version."""
    namespace: dict = {}
    source = "def parse_model(m, args):\n    channels, f = [3, 16], -1\n    return m(*args)\n"
    exec(compile(source, tasks.__file__, "exec"), namespace)
    fake = namespace["parse_model"]
    parse_model_code(fake.__code__)
    with pytest.raises(RegistryError) as err:
        fake(tasks.SimAM, [0.01])
    assert str(err.value).startswith(f"cannot infer input channels with Ultralytics {VERSION}; supported: ")
    assert "(parse_model's locals ch=NoneType, f=int)" in str(err.value)


def test_direct_construction_takes_arguments_as_written():
    ultra.register()
    module = tasks.SE(24, 4)
    assert module.fc[0].in_features == 24 and module.fc[0].out_features == 6
