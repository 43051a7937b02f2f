"""A small on-disk cache of tensors: keyed, checksummed, atomic, and safe under parallel notebooks.

Each entry is one safetensors file (no pickle) whose metadata holds the key it was computed for and a
SHA-256 of its tensors. A reader that finds a truncated, corrupted or mismatched file says so, deletes it
and recomputes. Writers hold a per-entry file lock, so two notebooks asking for the same entry at once
compute it once: the second waits and then reads the first one's file. Files appear complete or not at
all (written under a temporary name, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT_VERSION = "1"


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
    return tensors


def write_entry(path: Path, key: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"key": json.dumps(key, sort_keys=True, default=str), "sha256": tensors_digest(tensors),
            "format": FORMAT_VERSION}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
