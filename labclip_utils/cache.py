"""A small on-disk cache: keyed by content *and code*, checksummed, atomic, and safe under parallel notebooks.

Each entry is one safetensors file (no pickle) whose metadata holds the key it was computed for and a SHA-256 of
its tensors. A reader that finds a truncated, corrupted or mismatched file says so, deletes it and recomputes.
Writers hold a per-entry file lock, so two notebooks asking for the same entry at once compute it once: the second
waits and then reads the first one's file. Files appear complete or not at all (written under a unique temporary
name, then renamed).

**Keys carry the code.** Every computation that is cached puts :func:`code_digest` of its module into its key: a
hash of that module's source and of every ``labclip_utils`` module it imports, directly or not. Editing any of
them changes the key, so a cache can never hand back a number that the current code would not compute.

**Sharing a cache.** Files are created readable as the umask allows, and group-writable when their folder is (a class
can share one cache folder: make it group-writable and set the setgid bit, ``chmod 2775``): entries,
lock files and the sub-folders made for them get the folder's group permissions, so every user of the group can read,
lock and replace them. In a sticky folder (``chmod +t``) another user's stale entry cannot be replaced: it is
rewritten in place under its lock when group-writable, else the value is used without caching, with a warning.
Temporary files of writers that died (their process is gone) are removed at the next write to their folder.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import socket
import stat
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as safetensors_bytes

FORMAT_VERSION = "1"
#: Temporary files older than this (left by a killed process) are removed when their folder is next written to;
#: those of a writer whose process is gone (on this machine) at once.
STALE_TMP_S = 6 * 3600
#: This machine, in temporary names: a process id is only checked on the machine that wrote it (shared file systems).
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


# -- code digests ---------------------------------------------------------------------------------------------
def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imported_modules(source: str, package: str, current: str) -> set[str]:
    """Names of the modules of ``package`` that ``source`` imports (anywhere, including inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parts = current.split(".")[: -node.level]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found.update(n for n in names if n == package or n.startswith(package + "."))
    return found


@lru_cache(maxsize=256)
def _closure(name: str, stamp: tuple, exclude: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    package = name.split(".")[0]
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        if any(mod == x or (x.endswith(".*") and (mod + ".").startswith(x[:-1])) for x in exclude):
            seen[mod] = ""
            continue
        path = _module_file(mod)
        if path is None:
            seen[mod] = ""
            continue
        source = path.read_text(encoding="utf-8")
        seen[mod] = hashlib.sha256(source.encode()).hexdigest()
        parents = [".".join(mod.split(".")[:i]) for i in range(1, mod.count(".") + 1)]
        todo.extend(_imported_modules(source, package, mod) | set(parents))
    return tuple(sorted((m, h) for m, h in seen.items() if h))


def code_digest(*modules: str, exclude: tuple[str, ...] = ()) -> str:
    """A short hash of the source of ``modules`` and of every module of their package they import, transitively.

    ``code_digest("labclip_utils.diagnosis")`` changes when ``diagnosis.py``, ``probing.py``, ``labclip.py``...
    change, so it belongs in the key of everything those modules compute and cache. ``exclude`` names modules
    (``"pkg.mod"``, or ``"pkg.sub.*"`` for a subpackage and everything below it) that are neither hashed nor
    followed: code that stores, downloads or labels results rather than computing them, for a digest that should
    change only when the numbers can.
    """
    if not modules:
        raise ValueError("name at least one module")
    for name in modules:
        if _module_file(name) is None:
            raise ValueError(f"no Python source found for module {name!r}")
    stamp = _package_stamp(modules[0])  # lets the memo notice edits made while this process runs
    h = hashlib.sha256()
    for name in sorted(modules):
        for mod, digest in _closure(name, stamp, tuple(sorted(exclude))):
            h.update(f"{mod}={digest};".encode())
    return h.hexdigest()[:16]


def _package_stamp(name: str) -> tuple:
    """Modification times of every source file of ``name``'s top-level package (cheap: a stat per file)."""
    root = _module_file(name.split(".")[0])
    if root is None:
        return ()
    return tuple((str(p), p.stat().st_mtime_ns) for p in sorted(root.parent.rglob("*.py")))


# -- entries --------------------------------------------------------------------------------------------------
def key_digest(key: Mapping[str, Any]) -> str:
    """A stable short hash of a JSON-serialisable key."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def entry_path(root: Path, kind: str, key: Mapping[str, Any]) -> Path:
    return Path(root) / kind / f"{key_digest(key)}.safetensors"


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


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """A safetensors file written by this process itself (``safetensors.torch.save_file`` goes through a
    ``.tmpXXXXXX`` file of its own, which a killed process leaves behind)."""
    data = safetensors_bytes({k: v.contiguous() for k, v in tensors.items()}, metadata=dict(metadata))
    with open(path, "wb") as f:
        f.write(data)


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, both from one read of it: a writer replacing the file meanwhile
    cannot pair one file's metadata with another's tensors. Raises ``ValueError`` naming a malformed file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        size = int.from_bytes(data[:8], "little")
        if len(data) < 8 or size > len(data) - 8:
            raise ValueError("truncated header")
        header = json.loads(data[8:8 + size])
        meta = header.get("__metadata__") or {} if isinstance(header, dict) else None
        if not isinstance(meta, dict):
            raise ValueError("malformed header")
        return load_safetensors_bytes(data), {str(k): str(v) for k, v in meta.items()}
    except (ValueError, SafetensorError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err


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


def _entry_problem(path: Path, key: Mapping[str, Any] | None) -> tuple[dict[str, torch.Tensor] | None, str | None]:
    """The tensors of the entry at ``path`` and None, or None and why the entry cannot be used (unreadable, failing
    its checksum, or written for another ``key``; ``key=None`` checks the checksum only)."""
    try:
        tensors, meta = read_safetensors(path)
    except (ValueError, OSError) as err:
        return None, f"it cannot be read ({err})"
    if key is not None and meta.get("key") != json.dumps(key, sort_keys=True, default=str):
        return None, "it was written for a different key"
    if meta.get("sha256") != tensors_digest(tensors):
        return None, "its checksum does not match (corrupted)"
    return tensors, None


def entry_problem(path: Path) -> str | None:
    """Why the cache entry file at ``path`` cannot be used (unreadable, or its tensors fail their stored SHA-256), or
    None when it is sound."""
    return _entry_problem(path, None)[1]


def read_entry(path: Path, key: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The tensors stored at ``path`` for ``key``; None (after a warning and deleting the file) if the file is
    unreadable, fails its checksum or was written for another key; None silently if there is no file."""
    if not path.exists():
        return None
    tensors, problem = _entry_problem(path, key)
    if problem:
        warnings.warn(f"cache entry {path} ignored and recomputed: {problem}", RuntimeWarning, stacklevel=3)
        with contextlib.suppress(PermissionError):  # another user's, in a sticky folder: replaced in place later
            path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):  # a read-only shared cache is fine
        os.utime(path)  # "used now": make artifacts packs the entries a build used
    return tensors


def write_entry(path: Path, key: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Write atomically: a uniquely named temporary file in the same folder, then ``os.replace``. An entry of another
    user in a sticky folder cannot be replaced: it is rewritten in place when group-writable (callers hold its
    lock), else left as it is, with a warning."""
    make_folder(path.parent)
    remove_stale_temporaries(path.parent)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"key": json.dumps(key, sort_keys=True, default=str), "sha256": tensors_digest(tensors),
            "format": FORMAT_VERSION}
    try:
        atomic_write(path, lambda tmp: write_safetensors(tmp, tensors, meta), share=True)
    except PermissionError:
        if not (path.parent.stat().st_mode & stat.S_ISVTX and path.exists()):
            raise
        try:
            write_safetensors(path, tensors, meta)
        except PermissionError:
            warnings.warn(f"cache entry {path} belongs to another user in a sticky folder and cannot be replaced; "
                          "the value is used without caching it", RuntimeWarning, stacklevel=3)


def cached_tensors(
    root: Path, kind: str, key: Mapping[str, Any], compute: Callable[[], Mapping[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], bool]:
    """Return ``(tensors, hit)``: the cached entry for ``key``, or ``compute()`` stored under it."""
    path = entry_path(root, kind, key)
    with file_lock(path):
        found = read_entry(path, key)
        if found is not None:
            return found, True
        tensors = dict(compute())
        write_entry(path, key, tensors)
        return tensors, False


def cached_json(root: Path, kind: str, key: Mapping[str, Any], compute: Callable[[], Any]) -> tuple[Any, bool]:
    """:func:`cached_tensors` for a JSON-serialisable value (numbers, tables as records): ``(value, hit)``."""
    def as_tensors() -> dict[str, torch.Tensor]:
        data = json.dumps(compute(), sort_keys=True).encode()
        return {"json": torch.frombuffer(bytearray(data), dtype=torch.uint8)}

    tensors, hit = cached_tensors(root, kind, key, as_tensors)
    return json.loads(bytes(tensors["json"].numpy()).decode()), hit
