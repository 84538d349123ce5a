"""Publishing a user's output: the one way attnsurgeon gives a file its name. No torch, no printing.

Every output is written whole to a temporary file beside its target, then published. Without ``force`` the name is
claimed so that a file already there is never replaced, even one that appeared while the model was being built and
verified (the early :func:`check_output` only fails fast; the publish step is what guarantees it): ``os.link`` fails
when the target exists; a filesystem without hard links (vfat/exFAT, some FUSE and SMB mounts) claims the name with
``O_CREAT | O_EXCL`` instead, then renames over that empty claim. With ``force`` the temporary file is renamed over
the target (``os.replace``), which every filesystem supports.

Several files (a checkpoint's ``.pt`` and ``.yaml``, cam's pictures) are published all or none: when one fails, the
ones published before it are taken back (a file we created is removed, a file ``force`` replaced gets its old
contents back), and a file we did not create is never removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from attnsurgeon.errors import AttnSurgeonError, OutputError

# What os.link raises where the filesystem has no hard links (vfat/exFAT EPERM, SMB/FUSE ENOTSUP, ENOSYS, EXDEV):
# publish claims the name another way. EACCES is a real permission problem, reported as it is.
NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS})


def exists_error(path: Path) -> AttnSurgeonError:
    """The one error for an output that exists without ``--force`` (early check and publish step alike)."""
    return OutputError(f"{path}: already exists; pass --force to overwrite it or choose another -o path")


def check_output(path: Path, force: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse, before any work, a path in a missing directory, an existing file without force, or one of the inputs."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: directory {parent} does not exist; create it or choose another -o path")
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; give a file name with -o")
    for src in inputs:
        if src.exists() and path.exists() and path.resolve() == src.resolve():
            raise OutputError(f"{path}: is the input file; choose another -o path (the input is never overwritten)")
    if path.exists() and not force:
        raise exists_error(path)


def publish(
    path: Path, data: str | bytes, *, force: bool, refuse: Callable[[Path], AttnSurgeonError] = exists_error
) -> None:
    """Write ``data`` (text as UTF-8) to ``path``: the target is either untouched or the whole new file."""
    publish_all([(path, data)], force=force, refuse=refuse)


def publish_all(
    files: Sequence[tuple[Path, str | bytes]],
    *,
    force: bool,
    refuse: Callable[[Path], AttnSurgeonError] = exists_error,
) -> None:
    """Write several files all or none. Without ``force`` a target that exists when its turn comes is ``refuse(path)``
    (an OutputError naming it and --force); a failing write (read-only folder, full disk) is an OutputError naming the
    file. Either way every file is as it was before and no temporary file is left."""
    staged: list[tuple[Path, str]] = []
    published: list[tuple[Path, tuple[int, int], str | None]] = []  # (target, its inode, backup of what it replaced)
    current = files[0][0] if files else Path(".")
    try:
        for path, data in files:
            current = path
            staged.append((path, _stage(path, data)))
        for path, tmp in staged:
            current = path
            backup = None
            if force:
                if len(staged) > 1 and path.exists():  # a later file may fail: keep the old contents to put back
                    backup = _backup(path, f"{tmp}.old")
                os.replace(tmp, path)
            else:
                _claim(path, tmp, refuse)
            st = os.stat(path)
            published.append((path, (st.st_dev, st.st_ino), backup))
    except BaseException as exc:
        _take_back(published)
        if isinstance(exc, OSError):
            raise OutputError(f"{current}: cannot be written ({exc.strerror or exc}); nothing was written") from exc
        raise
    finally:
        for _, tmp in staged:
            for leftover in (tmp, f"{tmp}.old"):
                if os.path.lexists(leftover):
                    os.unlink(leftover)


def _stage(path: Path, data: str | bytes) -> str:
    """The whole contents in a temporary file in the target's folder (same filesystem, so publishing is a rename)."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _claim(path: Path, tmp: str, refuse: Callable[[Path], AttnSurgeonError]) -> None:
    """Give ``tmp`` the name ``path`` only if no file has it: never replaces one."""
    try:
        os.link(tmp, path)  # atomic and no-clobber: EEXIST when the target is there
        return
    except FileExistsError:
        raise refuse(path) from None
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
    try:  # no hard links here: claim the name with an exclusive create, then rename over our own empty claim
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise refuse(path) from None
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(path)  # the empty claim is ours
        raise


def _backup(path: Path, backup: str) -> str:
    """Keep the contents ``force`` is about to replace: a hard link where the filesystem has them, else a copy."""
    try:
        os.link(path, backup)
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        shutil.copy2(path, backup)
    return backup


def _take_back(published: list[tuple[Path, tuple[int, int], str | None]]) -> None:
    """Undo what this call published, newest first: restore what ``force`` replaced, remove what we created. A target
    that is no longer our file (another process replaced it meanwhile) is left alone."""
    for path, inode, backup in reversed(published):
        try:
            if backup is not None:
                os.replace(backup, path)
                continue
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == inode:
                os.unlink(path)
        except OSError:
            pass  # best effort: the error being reported matters more than a failed clean-up
