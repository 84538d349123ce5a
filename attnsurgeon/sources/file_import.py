"""Importing a Python file given by path, once, under a fixed module name: the one way plugin files (``--plugin``)
and files of plain ``nn.Module`` classes (``FILE.py:Class``) are loaded. A file that does not import is a one-line
:class:`~attnsurgeon.errors.PluginError` (a missing dependency names the package to install)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from attnsurgeon.errors import AttnSurgeonError, PluginError, first_line

IMPORT_FAILED = "importing it failed"
_IMPORTED: list[Path] = []  # every file this process ran, in order: a report names them (``imported``)


def imported() -> list[str]:
    """The plugin and class files this process has imported so far (their code ran), once each, in order: the
    ``imported`` of every report."""
    return [str(p) for p in _IMPORTED]


def import_file(path: Path, module_name: str, label: str) -> ModuleType:
    """The module of ``path`` (imported now, or the one imported before under ``module_name``)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {label}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # its classes pickle by this name
    if path.resolve() not in _IMPORTED:
        _IMPORTED.append(path.resolve())  # named even when it fails: its code ran
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise PluginError(f"plugin {label}: syntax error at line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        del sys.modules[module_name]
        hint = _missing_hint(exc.name, path) if isinstance(exc, ModuleNotFoundError) and exc.name else ""
        why = first_line(exc, typed=not isinstance(exc, AttnSurgeonError))
        raise PluginError(f"plugin {label}: {IMPORT_FAILED}: {why}{hint}") from None
    return module


# Import names whose distribution on PyPI is named otherwise, and names known as distributions: only for these does the
# hint say pip install (a name a repository's own package has, `model`, `utils`, is no PyPI package to install).
DISTRIBUTIONS = {
    "cv2": "opencv-python", "PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn", "skimage": "scikit-image",
    "pywt": "PyWavelets", "einops": "einops", "timm": "timm", "mmcv": "mmcv", "mmengine": "mmengine", "scipy": "scipy",
    "natten": "natten", "kornia": "kornia", "fvcore": "fvcore", "thop": "ultralytics-thop", "numpy": "numpy",
    "torchvision": "torchvision", "matplotlib": "matplotlib", "pandas": "pandas", "tqdm": "tqdm",
}  # fmt: skip


def _missing_hint(name: str, path: Path) -> str:
    """What to do about an import a file needs: a package of the file's own repository (a folder of that name in the
    file's folder or above) is made importable from the repository root; a known distribution is installed."""
    top = name.split(".")[0]
    for folder in [path.resolve().parent, *path.resolve().parent.parents][:6]:
        if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
            return (
                f" ({top} is a package of the file's own repository ({folder / top}): run from {folder}, or set "
                f"PYTHONPATH={folder}, so that it imports)"
            )
    if top in DISTRIBUTIONS:
        return f" (install it: pip install {DISTRIBUTIONS[top]})"
    return f" ({top} is neither installed nor a package of the file's repository; install what provides it)"
