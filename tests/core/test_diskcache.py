"""The start-up caches (catalog specs, Ultralytics' names, installed entry points) answer exactly what reading the
sources answers, and a change a user makes (editing a file, installing a package) is seen on the next command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plugin_files import gate_plugin

from attnsurgeon.catalog import name_rules, scan
from attnsurgeon.catalog.spec import from_plain, to_plain
from attnsurgeon.core import diskcache


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ATTNSURGEON_CACHE_DIR", str(folder))
    monkeypatch.delenv("ATTNSURGEON_NO_CACHE", raising=False)
    return folder


def counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def touch_later(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # coarse file-system clocks: make the edit visible in the stat
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_a_value_is_computed_once_and_recomputed_when_a_source_changes(cache, tmp_path):
    source = tmp_path / "source.py"
    source.write_text("a = 1\n")
    compute, calls = counting(("x", (1, 2.5, None), {"k": [True]}))
    assert diskcache.cached("probe", [source], compute) == ("x", (1, 2.5, None), {"k": [True]})
    assert diskcache.cached("probe", [source], compute) == ("x", (1, 2.5, None), {"k": [True]})
    assert len(calls) == 1
    touch_later(source, "a = 22\n")
    diskcache.cached("probe", [source], compute)
    assert len(calls) == 2
    source.unlink()
    diskcache.cached("probe", [source], compute)
    assert len(calls) == 3
    assert len(list(cache.glob("probe-*.marshal"))) == 3  # older keys stay for other environments, up to KEEP


def test_old_entries_are_pruned_to_a_few_per_kind(cache, tmp_path):
    source = tmp_path / "source.py"
    for i in range(diskcache.KEEP + 5):
        touch_later(source, "x" * (i + 1))
        diskcache.cached("probe", [source], lambda i=i: i)
    assert len(list(cache.glob("probe-*.marshal"))) == diskcache.KEEP


def test_a_damaged_or_unwritable_cache_only_costs_speed(cache, tmp_path):
    source = tmp_path / "source.py"
    source.write_text("a = 1\n")
    compute, calls = counting([1, 2, 3])
    diskcache.cached("probe", [source], compute)
    (entry,) = cache.glob("probe-*.marshal")
    entry.write_bytes(b"\x00garbage")
    assert diskcache.cached("probe", [source], compute) == [1, 2, 3]
    assert len(calls) == 2
    entry.unlink()
    cache.chmod(0o500)
    try:
        assert diskcache.cached("probe", [source], compute) == [1, 2, 3]
    finally:
        cache.chmod(0o700)


def test_no_cache_switch_reads_the_sources_every_time(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSURGEON_NO_CACHE", "1")
    compute, calls = counting(7)
    diskcache.cached("probe", [tmp_path], compute)
    diskcache.cached("probe", [tmp_path], compute)
    assert len(calls) == 2
    assert not cache.exists()


def test_cached_catalog_specs_equal_a_fresh_scan_of_every_file(cache):
    fresh = {}
    for path in sorted(scan.MODULES_DIR.glob("*.py")):
        if path.stem not in scan._NOT_MODULES and not path.stem.startswith("_"):
            fresh.update({s.name: s for s in scan.scan_file(path)})
    assert len(fresh) == 33
    assert scan.scan_builtins() == fresh  # fills the cache
    assert scan.scan_builtins() == fresh  # read back from it
    for spec in fresh.values():
        assert from_plain(to_plain(spec)) == spec
        assert [a.required for a in from_plain(to_plain(spec)).args] == [a.required for a in spec.args]


def test_cached_ultralytics_names_equal_a_fresh_read_of_tasks_py(cache):
    import ultralytics

    tasks = Path(ultralytics.__file__).parent / "nn" / "tasks.py"
    name_rules.ultralytics_names.cache_clear()
    try:
        names = name_rules.ultralytics_names()
        assert names == frozenset(name_rules._names_in(tasks))
        assert list(cache.glob("ultralytics-names-*.marshal"))
        assert {"Conv", "C3k2", "SPPF", "Detect", "Concat", "nn", "parse_model"} <= names
    finally:
        name_rules.ultralytics_names.cache_clear()


def run_list(cwd: Path, site: Path, cache: Path) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "ATTNSURGEON_CACHE_DIR": str(cache),
        "YOLO_OFFLINE": "1",
    }
    env.pop("ATTNSURGEON_NO_CACHE", None)
    code = "from attnsurgeon.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, "list", "--no-cost", "--json"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [entry["name"] for entry in json.loads(done.stdout)]


def test_a_package_installed_after_the_cache_was_filled_is_found(tmp_path):
    """pip adds a ``*.dist-info`` folder to a folder on sys.path; the next command lists the new module."""
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    assert "LateGate" not in run_list(tmp_path, site, cache)
    assert list(cache.glob("entry-points-*.marshal"))
    time.sleep(0.01)
    (site / "lategate.py").write_text(gate_plugin("LateGate"))
    info = site / "lategate-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lategate\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[attnsurgeon.modules]\nlategate = lategate\n")
    assert "LateGate" in run_list(tmp_path, site, cache)
    for path in sorted(info.iterdir()):
        path.unlink()
    info.rmdir()
    assert "LateGate" not in run_list(tmp_path, site, cache)  # uninstalled: gone again


def test_an_edit_that_keeps_size_and_modification_time_is_still_seen(cache, tmp_path):
    """cp -p, touch -r and some editors put the old mtime back; the change time cannot be set back."""
    source = tmp_path / "catalog_file.py"
    source.write_text("reduction = 16\n")
    compute, calls = counting("specs")
    diskcache.cached("probe", [source], compute)
    before = source.stat()
    time.sleep(0.01)
    source.write_text("reduction = 32\n")  # same size
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))  # same modification time
    assert source.stat().st_size == before.st_size and source.stat().st_mtime_ns == before.st_mtime_ns
    diskcache.cached("probe", [source], compute)
    assert len(calls) == 2
