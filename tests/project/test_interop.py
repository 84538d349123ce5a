"""Plain Ultralytics in every process: YAMLs and checkpoints from attnsurgeon, used by processes that never import it.

Everything that matters here runs in real subprocesses (``sys.executable``, cwd a temporary directory): the
auto-registration hook installed by ``attnsurgeon-autoload.pth`` is what makes ``YOLO(path)``, the ``yolo`` command and
``ULTRALYTICS_SAFE_LOAD=1`` work there. ``ATTNSURGEON_AUTOLOAD=0`` turns it off, which the failing control runs show.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch

from attnsurgeon.ops import surgery as api
from attnsurgeon.ultralytics_bridge import autoload as _autoload
from attnsurgeon.ultralytics_bridge import ultra

REPO = Path(__file__).resolve().parents[2]
PTH_NAME = "attnsurgeon-autoload.pth"
BIN = Path(sys.executable).parent


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ATTNSURGEON_AUTOLOAD", "ULTRALYTICS_SAFE_LOAD")}
    env.update(
        YOLO_OFFLINE="1",
        YOLO_VERBOSE="False",
        YOLO_CONFIG_DIR=str(tmp / ".ultralytics-config"),  # settings and runs never touch the user's
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=child_env(cwd, **env), capture_output=True, text=True, timeout=timeout)


def python(code: str, cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", textwrap.dedent(code)], cwd, timeout, **env)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------------------------
# The hook itself


def test_pth_file_is_installed_in_site_packages():
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    assert pth.is_file(), f"{pth} is missing: reinstall attnsurgeon (pip install -e . or pip install .)"
    lines = [ln for ln in pth.read_text().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("import ")
    assert "ATTNSURGEON_AUTOLOAD" in lines[0] and "import attnsurgeon.ultralytics_bridge.autoload" in lines[0]
    # lazily
    assert lines[0].index("ultralytics.nn.tasks") < lines[0].index("import attnsurgeon.ultralytics_bridge.autoload")
    assert "except Exception" in lines[0]  # never raises at start-up


def test_plain_python_imports_nothing_and_only_gets_a_finder(tmp_path):
    code = (
        "import sys; print([sorted(m for m in sys.modules if 'attnsurgeon' in m or m in ('torch', 'typing')), "
        "[type(f).__name__ for f in sys.meta_path].count('AttnSurgeonAutoload')])"
    )
    modules, finders = eval(ok(python(code, tmp_path)))
    assert [m for m in modules if "finder" not in m] == [] and finders == 1
    for value in ("0", "false", "off", " NO "):
        modules, finders = eval(ok(python(code, tmp_path, ATTNSURGEON_AUTOLOAD=value)))
        assert [m for m in modules if "finder" not in m] == [] and finders == 0, value


def test_import_attnsurgeon_is_light_and_the_api_is_lazy(tmp_path):
    out = ok(
        python(
            """
            import json, sys
            import attnsurgeon
            light = not any(m in sys.modules for m in ("torch", "typer", "ultralytics", "ruamel", "typing"))
            names = sorted(n for n in attnsurgeon.__all__ if n != "__version__")
            resolved = {n: getattr(attnsurgeon, n).__name__ for n in names}
            print(json.dumps({"light": light, "resolved": resolved, "torch": "torch" in sys.modules}))
            """,
            tmp_path,
        )
    )
    data = last_json(out)
    assert data["light"], "import attnsurgeon must not import torch, typer, ultralytics, ruamel or typing"
    assert data["resolved"]["insert"] == "insert" and data["resolved"]["register"] == "register"
    assert data["resolved"]["errors"] == "attnsurgeon.errors"
    assert not data["torch"], "resolving insert/register must stay torch-free until they are called"


def test_hook_is_inert_for_other_modules_and_registers_when_ultralytics_is_already_imported(monkeypatch):
    monkeypatch.delenv("ATTNSURGEON_AUTOLOAD", raising=False)
    finder = _autoload.AutoRegisterFinder()
    assert finder.find_spec("json") is None and finder.find_spec("ultralytics.nn") is None
    import ultralytics.nn.tasks as tasks

    monkeypatch.setattr(ultra, "_registered", {})
    monkeypatch.delattr(tasks, "IdentityInit", raising=False)
    assert _autoload.install() is True
    assert _autoload._FINDER not in sys.meta_path  # Ultralytics was imported: registered at once, nothing installed
    assert tasks.IdentityInit.__name__ == "IdentityInit" and hasattr(tasks, "SE")
    monkeypatch.setenv("ATTNSURGEON_AUTOLOAD", "0")
    assert _autoload.install() is False


def test_a_failing_registration_is_a_warning_not_an_exception(monkeypatch):
    def broken() -> None:
        raise RuntimeError("plugin exploded")

    monkeypatch.setattr(ultra, "register", broken)
    with pytest.warns(RuntimeWarning, match="plugin exploded.*ATTNSURGEON_AUTOLOAD=0"):
        _autoload._registered_hook()


# --------------------------------------------------------------------------------------------------------------------
# YAMLs and checkpoints in fresh processes


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A directory with two YAMLs written by attnsurgeon, a model.save() checkpoint and a trainer-style last.pt."""
    tmp = tmp_path_factory.mktemp("interop")
    api.insert("yolo11n.yaml", "SE", after=8, output=tmp / "yolo11n-SE.yaml", verify=False)
    api.insert("yolo11n.yaml", "CBAM", after=6, output=tmp / "yolo11n-CBAM.yaml", verify=False, identity_init=True)
    out = ok(
        python(
            """
            import json, sys
            from ultralytics import YOLO
            se, cbam = YOLO("yolo11n-SE.yaml"), YOLO("yolo11n-CBAM.yaml")
            se.save("yolo11n-SE.pt")
            print(json.dumps({
                "se": type(se.model.model[9]).__name__,
                "cbam": [type(cbam.model.model[7]).__name__, type(cbam.model.model[7].inner).__name__],
                "modules": sorted(m for m in sys.modules if m.startswith("attnsurgeon")),
            }))
            """,
            tmp,
        )
    )
    built = last_json(out)
    assert built["se"] == "SE" and built["cbam"] == ["IdentityInit", "CBAM"]
    assert "attnsurgeon.ultralytics_bridge.ultra" in built["modules"]  # the hook registered...
    # ...nothing else
    assert not {"attnsurgeon.ops.surgery", "attnsurgeon.cli", "attnsurgeon.core.yamlfile.model_doc"} & set(
        built["modules"]
    )
    # a trainer's mid-training last.pt: model None, the EMA, optimizer state, train_args
    ema = torch.load(tmp / "yolo11n-SE.pt", weights_only=False)["model"]
    optimizer = torch.optim.SGD(ema.float().parameters(), lr=0.01, momentum=0.9)
    torch.save(
        {
            "epoch": 0,
            "best_fitness": None,
            "model": None,
            "ema": ema.half(),
            "updates": 1,
            "optimizer": optimizer.state_dict(),
            "train_args": {"model": "yolo11n-SE.yaml", "epochs": 1},
            "version": "8.4.0",
        },
        tmp / "last.pt",
    )
    return tmp


def test_yaml_does_not_build_without_the_hook(work):
    result = python("from ultralytics import YOLO; YOLO('yolo11n-SE.yaml')", work, ATTNSURGEON_AUTOLOAD="0")
    assert result.returncode != 0 and "KeyError: 'SE'" in result.stderr


@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_checkpoints_load_in_a_fresh_process(work, safe_load):
    out = ok(
        python(
            """
            import json, torch
            from ultralytics import YOLO
            from ultralytics.nn.tasks import _SafeLoad
            x = torch.rand(1, 3, 64, 64)
            found = {"restricted": _SafeLoad.restricted()}
            for name in ("yolo11n-SE.pt", "last.pt"):
                model = YOLO(name).model.eval()
                with torch.inference_mode():
                    found[name] = [type(model.model[9]).__name__, float(model(x)[0].abs().sum())]
            print(json.dumps(found))
            """,
            work,
            ULTRALYTICS_SAFE_LOAD=safe_load,
        )
    )
    found = last_json(out)
    assert found["restricted"] is (safe_load == "1")
    assert found["yolo11n-SE.pt"][0] == found["last.pt"][0] == "SE"
    assert found["yolo11n-SE.pt"][1] == pytest.approx(found["last.pt"][1])


def test_yolo_command_builds_the_yaml(work):
    from PIL import Image

    Image.new("RGB", (64, 64), (120, 30, 200)).save(work / "img.jpg")
    args = [str(BIN / "yolo"), "predict", "model=yolo11n-CBAM.yaml", "source=img.jpg", "imgsz=64", "save=False"]
    result = run([*args, "device=cpu"], work, YOLO_VERBOSE="True")
    output = ok(result) + result.stderr
    assert "YOLO11n-CBAM summary" in output and "image 1/1" in output


def test_every_catalog_module_survives_ultralytics_safe_load(tmp_path):
    """The allow-list: catalog classes, their private helper modules, and the IdentityInit wrapper."""
    from ultralytics.nn.tasks import torch_safe_load

    from attnsurgeon.catalog import REGISTRY
    from attnsurgeon.ultralytics_bridge.wrappers import IdentityInit

    ultra.register()
    modules = {}
    for spec in REGISTRY.specs():
        cls = REGISTRY.load_class(spec.name)
        modules[spec.name] = cls(32, *spec.defaults())
    modules["IdentityInit"] = IdentityInit(32, "CBAM", [])
    path = tmp_path / "all.pt"
    torch.save({"model": torch.nn.ModuleDict(modules)}, path)
    loaded, _ = torch_safe_load(str(path), safe_only=True)
    assert set(loaded["model"]) == set(modules)
    for name, module in loaded["model"].items():
        assert type(module) is type(modules[name])


# --------------------------------------------------------------------------------------------------------------------
# Slow: real training with the yolo command, and the packaging of the .pth file


def make_dataset(root: Path) -> Path:
    """Four 64x64 images with one box each, for train and val; returns data.yaml."""
    from PIL import Image, ImageDraw

    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            img = Image.new("RGB", (64, 64), (20 * i, 90, 160))
            ImageDraw.Draw(img).rectangle([16, 16, 47, 47], fill=(250, 250, 250))
            img.save(root / "images" / split / f"{i}.jpg")
            (root / "labels" / split / f"{i}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")
    return data


def train_overrides(data: Path, project: Path) -> dict:
    return {
        "data": str(data),
        "epochs": 1,
        "imgsz": 64,
        "batch": 4,
        "workers": 0,
        "device": "cpu",
        "plots": False,
        "amp": False,
        "project": str(project),
        "name": "run",
        "exist_ok": True,
    }


def yolo_cli_args(model: str, overrides: dict) -> list[str]:
    return [f"model={model}", *(f"{k}={v}" for k, v in overrides.items())]


@pytest.mark.slow
def test_yolo_train_then_checkpoint_surgery_then_train_again(work):
    """yolo train on an attnsurgeon YAML; its last.pt loads under ULTRALYTICS_SAFE_LOAD=1; surgery on that last.pt
    with --identity-init; plain Ultralytics trains the result, and the gate moves away from the identity."""
    data = make_dataset(work / "data")
    args = yolo_cli_args("yolo11n-CBAM.yaml", train_overrides(data, work / "runs1"))
    ok(run([str(BIN / "yolo"), "train", *args], work, timeout=600))
    last = work / "runs1" / "run" / "weights" / "last.pt"
    assert last.is_file()
    code = "from ultralytics import YOLO; m = YOLO('{}'); print(type(m.model.model[7].inner).__name__)"
    assert ok(python(code.format(last), work, ULTRALYTICS_SAFE_LOAD="1")).strip().endswith("CBAM")

    out = work / "yolo11n-CBAM-ECA.pt"
    args = ["insert", str(last), "-m", "ECA", "-a", "4", "-o", str(out), "--identity-init", "--imgsz", "64"]
    ok(run([str(BIN / "attnsurgeon"), *args], work, timeout=600))
    overrides = train_overrides(data, work / "runs2")
    ok(python(f"from ultralytics import YOLO; YOLO({str(out)!r}).train(**{overrides!r})", work, timeout=600))
    trained = torch.load(work / "runs2" / "run" / "weights" / "last.pt", weights_only=False)["model"]
    assert type(trained.model[5]).__name__ == "IdentityInit" and trained.model[5].gamma.item() != 0.0


def _copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "attnsurgeon", dest / "attnsurgeon", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "templates", dest / "templates", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.mark.slow
def test_wheel_installs_the_pth_and_it_activates_the_hook(tmp_path):
    project = _copy_project(tmp_path / "src")
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    ok(run([*pip, "wheel", str(project), "--no-deps", "--no-build-isolation", "-w", str(wheels)], tmp_path))
    (wheel,) = wheels.glob("attnsurgeon-*.whl")
    assert PTH_NAME in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    ok(run([*pip, "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)], tmp_path))
    assert (target / PTH_NAME).is_file()
    out = ok(
        python(
            f"""
            import os, site, sys
            del os.environ["ATTNSURGEON_AUTOLOAD"]  # off at start-up; on for the site dir added now
            site.addsitedir({str(target)!r})  # processes the .pth files there, as at start-up
            sys.path.remove({str(target)!r})
            sys.path.insert(0, {str(target)!r})  # ahead of a PYTHONPATH checkout, so the wheel's copy is imported
            import attnsurgeon
            from ultralytics.nn import tasks
            print(attnsurgeon.__file__.startswith({str(target)!r}), hasattr(tasks, "SE"))
            """,
            tmp_path,
            ATTNSURGEON_AUTOLOAD="0",
        )
    )
    assert out.split() == ["True", "True"]


@pytest.mark.slow
def test_editable_wheel_carries_the_pth(tmp_path):
    project = _copy_project(tmp_path / "src")
    dist = tmp_path / "dist"
    code = f"from setuptools import build_meta; print(build_meta.build_editable({str(dist)!r}))"
    name = ok(run([sys.executable, "-c", code], project)).strip().splitlines()[-1]
    assert PTH_NAME in zipfile.ZipFile(dist / name).namelist()
