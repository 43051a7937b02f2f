"""Hashes: of files (SHA-256), of tensors, of JSON-serialisable keys, of the package's own source code, and the
``SHA256SUMS`` manifest format that lists a folder's files with theirs.

**Keys carry the code.** :func:`code_digest` hashes a module's source and that of every module of its package it
imports, directly or not: a cache key that holds it changes whenever the code that computes the cached value does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

#: The file name of a folder's checksum list (``sha256sum`` format, paths relative to the folder).
MANIFEST = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def parse_manifest(text: str, where: str) -> dict[str, str]:
    """``relative path → sha256`` from ``sha256sum``-format text; a malformed line is an error naming ``where``."""
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match:
            raise ValueError(f"{where}: line {number} is not '<sha256>  <path>': {line[:80]!r}")
        out[match.group(2)] = match.group(1)
    return out


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
