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

import contextlib
import json
import os
import stat
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as safetensors_bytes

from labclip_utils.io.files import atomic_write, file_lock, make_folder, remove_stale_temporaries
from labclip_utils.io.hashing import key_digest, tensors_digest

FORMAT_VERSION = "1"



# -- entries --------------------------------------------------------------------------------------------------
def entry_path(root: Path, kind: str, key: Mapping[str, Any]) -> Path:
    return Path(root) / kind / f"{key_digest(key)}.safetensors"


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
