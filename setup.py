"""Build hook: install ``attnsurgeon-autoload.pth`` into site-packages, and ship ``templates/`` as
``attnsurgeon.templates`` (everything else is in pyproject.toml).

The .pth file is what lets plain Ultralytics (``YOLO(...)``, ``yolo train``, multi-GPU workers) build models that use
attnsurgeon's modules without importing attnsurgeon by hand; see ``attnsurgeon/ultralytics_bridge/autoload.py``. Its
one line imports
nothing when ``ATTNSURGEON_AUTOLOAD=0`` and never raises.

- ``pip install .`` (a wheel): the file is written to the root of ``build_lib``, which becomes site-packages.
- ``pip install -e .`` (PEP 660): setuptools' ``editable_wheel`` builds into an unpacked wheel directory, which it
  configures as ``install.install_lib``; files written there are packed into the editable wheel and so also land in
  site-packages.

The scaffold ``attnsurgeon new-module`` fills in lives in the top-level ``templates/`` folder; ``package_dir`` maps it
to the package ``attnsurgeon.templates``, so a wheel holds it inside ``attnsurgeon/templates/`` and an editable install
serves it from the checkout (setuptools' editable finder knows the mapping).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PTH_NAME = "attnsurgeon-autoload.pth"
# Run by site.py at start-up in every process: it must cost nothing and never raise. So it imports nothing of
# attnsurgeon: it puts a three-line finder on sys.meta_path that wakes only for ``ultralytics.nn.tasks``, and only then
# imports attnsurgeon.ultralytics_bridge.autoload (which registers the catalog right after that module has loaded).
_HOOK = """\
try:
 import sys
 class AttnSurgeonAutoload:
  def find_spec(self, name, path=None, target=None):
   if name != "ultralytics.nn.tasks":
    return None
   sys.meta_path.remove(self)
   import attnsurgeon.ultralytics_bridge.autoload as hook
   return hook._FINDER.find_spec(name, path, target)
 if not any(type(f).__name__ == "AttnSurgeonAutoload" for f in sys.meta_path):  # site dirs can repeat (lib64)
  sys.meta_path.insert(0, AttnSurgeonAutoload())
except Exception:
 pass
"""
PTH_LINE = (
    "import os; "
    'os.environ.get("ATTNSURGEON_AUTOLOAD", "1").strip().lower() in ("0", "false", "no", "off") '
    f"or exec({_HOOK!r})"
)


class BuildPyWithAutoload(build_py):
    """``build_py`` that also writes the auto-registration .pth file next to the package."""

    def run(self) -> None:
        super().run()
        # editable_wheel points install_lib at the unpacked editable wheel; build_lib is the normal wheel's root
        target = Path(self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib)
        target.mkdir(parents=True, exist_ok=True)
        (target / PTH_NAME).write_text(PTH_LINE + "\n", encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:  # type: ignore[override]
        outputs = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            outputs.append(str(Path(self.build_lib) / PTH_NAME))
        return outputs


setup(
    cmdclass={"build_py": BuildPyWithAutoload},
    packages=[*find_packages(include=["attnsurgeon", "attnsurgeon.*"]), "attnsurgeon.templates"],
    package_dir={"attnsurgeon.templates": "templates"},
    package_data={"attnsurgeon": ["py.typed"], "attnsurgeon.templates": ["*.tmpl"]},
)
