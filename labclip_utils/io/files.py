"""Files that appear complete or not at all, and folders a class can share.

Writers go through a unique temporary name next to the target and ``os.replace`` (:func:`atomic_write`, and
:func:`replace_folder` for a whole folder); temporary files of a writer that died are removed at the next write to
their folder. New files and folders take their folder's group permissions, so a ``chmod 2775`` cache stays shared.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

#: Temporary files older than this (left by a killed process) are removed when their folder is next written to;
#: those of a writer whose process is gone (on this machine) at once.
STALE_TMP_S = 6 * 3600
#: This machine, in temporary names: a process id is only checked on the machine that wrote it (shared file systems).
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temporary_path(path: Path) -> Path:
    """A unique temporary name next to ``path`` (hidden; removed by :func:`remove_stale_temporaries` if orphaned):
    ``.<name>.<pid>@<host>.<random>.tmp``."""
    return path.with_name(f".{path.name}.{os.getpid()}@{_HOST}.{uuid.uuid4().hex[:8]}.tmp")


def make_folder(folder: Path) -> Path:
    """``mkdir -p``, each new folder given its parent's group permissions (a ``chmod 2775`` cache stays shared)."""
    folder = Path(folder)
    if not folder.is_dir():
        if not folder.parent.is_dir():
            make_folder(folder.parent)
        with contextlib.suppress(FileExistsError):
            folder.mkdir()
            parent_mode = folder.parent.stat().st_mode
            if parent_mode & 0o070:
                with contextlib.suppress(OSError):
                    os.chmod(folder, stat.S_IMODE(folder.stat().st_mode) | (parent_mode & 0o070)
                             | (parent_mode & stat.S_ISGID))
    return folder


def atomic_write(path: str | Path, write: Callable[[Path], object], *, share: bool = False) -> Path:
    """Write ``path`` through ``write(tmp)`` on a unique temporary file next to it, then ``os.replace``: readers
    see the old file or the new one, never half of one, and a failed write leaves nothing behind. ``share`` gives
    the file its folder's permissions (:func:`share_like_folder`)."""
    path = Path(path)
    make_folder(path.parent)
    tmp = temporary_path(path)
    try:
        write(tmp)
        if share:
            share_like_folder(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _writer_is_gone(tmp: Path) -> bool:
    """Whether the process that named ``tmp`` (:func:`temporary_path`) ran on this machine and has exited."""
    parts = tmp.name.rsplit(".", 3)
    if len(parts) != 4:
        return False
    pid, _, host = parts[1].partition("@")
    if not pid.isdigit() or host not in ("", _HOST) or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: alive
        return False
    return False


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_TMP_S) -> int:
    """Delete temporary files that a killed process left in ``folder`` (ours of a writer that is gone, or older than
    ``older_than_s``; safetensors' own ``.tmpXXXXXX`` older than that); returns how many were removed."""
    removed, now = 0, time.time()
    candidates = [(p, True) for p in Path(folder).glob(".*.tmp")]
    candidates += [(p, False) for p in Path(folder).glob(".tmp??????")]
    for tmp, ours in candidates:
        try:
            if now - tmp.stat().st_mtime > older_than_s or (ours and _writer_is_gone(tmp)):
                tmp.unlink()
                removed += 1
        except (FileNotFoundError, PermissionError):  # gone already, or another user's in a sticky folder
            pass
    return removed


def share_like_folder(path: Path) -> None:
    """Give a new file at least its folder's read (and group-write) permissions, so a cache shared by a class stays
    readable to everyone who can read the folder (temporary files are created 0600)."""
    os.chmod(path, shared_mode(path.parent))


def shared_mode(folder: Path) -> int:
    """The mode of a new file in ``folder``: readable by all, group-writable when the folder is (within the
    umask, and never narrower than 0600)."""
    group_write = folder.stat().st_mode & 0o020
    umask = os.umask(0)
    os.umask(umask)
    return (0o644 & ~umask) | 0o600 | group_write


def file_lock(path: str | Path) -> FileLock:
    """The lock of ``path`` (``<path>.lock``), created with its folder's group permissions, so that every user of a
    shared cache can take it."""
    path = Path(path)
    make_folder(path.parent)
    return FileLock(str(path) + ".lock", mode=shared_mode(path.parent) & ~0o111)


def replace_folder(folder: str | Path, write: Callable[[Path], object]) -> Path:
    """Build ``folder`` through ``write(tmp)`` in a temporary sibling, then swap it into place: readers see the old
    folder or the new one, never a half-written one, and a failed ``write`` leaves nothing behind. An old folder is
    moved aside first and deleted after the swap."""
    folder = Path(folder)
    make_folder(folder.parent)
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        write(tmp)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
