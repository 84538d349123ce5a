"""Small on-disk caches for what every command reads and what rarely changes: the catalog's specs (read from the
catalog's source files), the names Ultralytics' ``parse_model`` resolves (read from its ``tasks.py``) and the
installed entry-point plugins (read from every installed distribution's metadata).

Reading those costs about a tenth of a second per command, several times the rest of ``insert --no-verify``.
Each entry is keyed by the ``stat`` (path, size, modification and change times) of the files it was read from and
of the code that reads them, plus the Python version, so editing a catalog file, upgrading Ultralytics or installing
a package (which adds a ``*.dist-info`` folder and so changes its ``site-packages`` folder) makes a new key. The
values are plain literals stored with :mod:`marshal`, the format of Python's own ``__pycache__`` (same trust: the
user's own cache folder).
A cache is an optimisation only: a missing, unreadable or read-only cache folder means reading the sources again.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_FORMAT = 1  # bump when the layout of a cached value changes


def cache_dir() -> Path:
    explicit = os.environ.get("ATTNSURGEON_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attnsurgeon"


def disabled() -> bool:
    """``ATTNSURGEON_NO_CACHE=1`` reads every source afresh (and writes no cache)."""
    return os.environ.get("ATTNSURGEON_NO_CACHE", "") not in ("", "0")


def stat_key(kind: str, paths: Iterable[Path | str]) -> str:
    """A key that changes when any of ``paths`` is created, removed, resized or modified (callers list the code
    that computes the value among them)."""
    digest = hashlib.sha256(f"{kind}\0{_FORMAT}\0{sys.version}".encode())
    for path in paths:
        try:
            st = os.stat(path)
            # ctime too: it changes on every write and cannot be set back, as an mtime can (cp -p, touch -r)
            digest.update(f"\0{path}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}".encode())
        except OSError:
            digest.update(f"\0{path}\0missing".encode())
    return digest.hexdigest()[:20]


def cached(kind: str, paths: Iterable[Path | str], compute: Callable[[], T]) -> T:
    """``compute()``'s value (plain literals only), from the cache when none of ``paths`` changed since."""
    if disabled():
        return compute()
    path = cache_dir() / f"{kind}-{stat_key(kind, paths)}.marshal"
    try:
        return marshal.loads(path.read_bytes())  # type: ignore[no-any-return]
    except (OSError, EOFError, ValueError, TypeError):
        pass
    value = compute()
    _store(path, value)
    return value


def _store(path: Path, value: Any) -> None:
    try:
        data = marshal.dumps(value)
        path.parent.mkdir(parents=True, exist_ok=True)
        prune(path.parent, f"{path.name.rsplit('-', 1)[0]}-*.marshal")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # a read-only home or an unmarshallable value only costs speed


KEEP = 8  # entries kept per kind: several environments may share one cache folder without evicting each other


def prune(folder: Path, pattern: str, keep: int = KEEP - 1) -> None:
    """Delete all but the ``keep`` newest files matching ``pattern`` (before writing a new one)."""
    found = []
    for path in folder.glob(pattern):
        try:
            found.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    for _, path in sorted(found, reverse=True)[keep:]:
        path.unlink(missing_ok=True)
