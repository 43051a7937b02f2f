"""A small on-disk cache: keyed by content *and code*, checksummed, atomic, and safe under parallel notebooks.

Each entry is one safetensors file (no pickle) whose metadata holds the key it was computed for and a SHA-256 of
its tensors. A reader that finds a truncated, corrupted or mismatched file says so, deletes it and recomputes.
Writers hold a per-entry file lock, so two notebooks asking for the same entry at once compute it once: the second
waits and then reads the first one's file. Files appear complete or not at all (written under a unique temporary
name, then renamed).

**Keys carry the code.** Every computation that is cached puts :func:`code_digest` of its module into its key: a
hash of that module's source and of every ``labclip_utils`` module it imports, directly or not. Editing any of
them changes the key, so a cache can never hand back a number that the current code would not compute.

**Sharing a cache.** Files are created with the permissions the folder's umask allows (a class can share one cache
folder: make it group-writable and set the setgid bit, ``chmod 2775``), never narrower than the folder's own.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import json
import os
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT_VERSION = "1"
#: Temporary files older than this (left by a killed process) are removed when their folder is next written to.
STALE_TMP_S = 6 * 3600


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
def _closure(name: str, stamp: tuple) -> tuple[tuple[str, str], ...]:
    package = name.split(".")[0]
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in seen:
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


def code_digest(*modules: str) -> str:
    """A short hash of the source of ``modules`` and of every module of their package they import, transitively.

    ``code_digest("labclip_utils.diagnosis")`` changes when ``diagnosis.py``, ``probing.py``, ``labclip.py``...
    change, so it belongs in the key of everything those modules compute and cache.
    """
    if not modules:
        raise ValueError("name at least one module")
    for name in modules:
        if _module_file(name) is None:
            raise ValueError(f"no Python source found for module {name!r}")
    stamp = _package_stamp(modules[0])  # lets the memo notice edits made while this process runs
    h = hashlib.sha256()
    for name in sorted(modules):
        for mod, digest in _closure(name, stamp):
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
    """A unique temporary name next to ``path`` (hidden; removed by :func:`remove_stale_temporaries` if orphaned)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: str | Path, write: Callable[[Path], object], *, share: bool = False) -> Path:
    """Write ``path`` through ``write(tmp)`` on a unique temporary file next to it, then ``os.replace``: readers
    see the old file or the new one, never half of one, and a failed write leaves nothing behind. ``share`` gives
    the file its folder's permissions (:func:`share_like_folder`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        write(tmp)
        if share:
            share_like_folder(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(folder: Path, older_than_s: float = STALE_TMP_S) -> int:
    """Delete temporary files that a killed process left in ``folder``; returns how many were removed."""
    removed, now = 0, time.time()
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def share_like_folder(path: Path) -> None:
    """Give a new file at least its folder's read (and group-write) permissions, so a cache shared by a class stays
    readable to everyone who can read the folder (temporary files are created 0600)."""
    folder_mode = path.parent.stat().st_mode & 0o777
    wanted = 0o644 | (folder_mode & 0o060)  # group write when the folder is group-writable
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, wanted & ~umask | 0o600)


def read_entry(path: Path, key: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The tensors stored at ``path`` for ``key``; None (after a warning and deleting the file) if the file is
    unreadable, fails its checksum or was written for another key; None silently if there is no file."""
    if not path.exists():
        return None
    problem = None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
        if meta.get("key") != json.dumps(key, sort_keys=True, default=str):
            problem = "it was written for a different key"
        elif meta.get("sha256") != tensors_digest(tensors):
            problem = "its checksum does not match (corrupted)"
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        problem = f"it cannot be read ({err})"
    if problem:
        warnings.warn(f"cache entry {path} ignored and recomputed: {problem}", RuntimeWarning, stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    with contextlib.suppress(OSError):  # a read-only shared cache is fine
        os.utime(path)  # "used now": make artifacts packs the entries a build used
    return tensors


def write_entry(path: Path, key: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Write atomically: a uniquely named temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"key": json.dumps(key, sort_keys=True, default=str), "sha256": tensors_digest(tensors),
            "format": FORMAT_VERSION}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta), share=True)


def cached_tensors(
    root: Path, kind: str, key: Mapping[str, Any], compute: Callable[[], Mapping[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], bool]:
    """Return ``(tensors, hit)``: the cached entry for ``key``, or ``compute()`` stored under it."""
    path = entry_path(root, kind, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
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
