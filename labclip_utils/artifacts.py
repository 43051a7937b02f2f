"""Prebuilt artefacts: the miniature's weights and the embeddings the chapters share, packed once, used everywhere.

Each Colab notebook runs on a machine of its own, so without help every chapter from 2 on trains the miniature
again (minutes on Colab's two CPU cores) before it shows anything. ``make artifacts`` packs what a build of the book
cached (the miniature, scene embeddings, LABCLIP fits, diagnoses) into one versioned archive with its SHA-256. A
release carries it, and :data:`PUBLISHED` (the one place that names it: ``records/artifacts.json``) tells the
chapters its address. :func:`ensure` — called by :func:`labclip_utils.use_profile` in the offline profile — then
downloads, checks and unpacks it into the cache when the miniature is not there yet, and says so; when nothing is
published, or the archive was built by another version of the code, it says that the miniature will be trained.

The archive holds cache entries, keyed by content *and code* as every cache entry is, so an archive from another
version of the code is simply not used.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from labclip_utils._version import __version__
from labclip_utils.cache import entry_problem
from labclip_utils.io.downloads import ChecksumError, DownloadError, RemoteFile, check_archive, fetch
from labclip_utils.io.files import atomic_write, make_folder
from labclip_utils.io.hashing import code_digest, sha256_of

#: Cache folders an archive carries (regenerable data, such as the offline benchmark files, stays out).
KINDS = ("miniature", "embeddings", "labclip_fits", "diagnoses", "end_to_end")
MANIFEST = "labclip-artifacts.json"


@dataclass(frozen=True)
class Published:
    """Where the archive for this version of the book is published (None: not yet)."""

    version: str
    url: str | None
    sha256: str | None


def published() -> Published:
    """The record in ``labclip_utils/records/artifacts.json``."""
    data = json.loads((files("labclip_utils.records") / "artifacts.json").read_text())
    return Published(str(data["version"]), data.get("url"), data.get("sha256"))


def code_version() -> str:
    """A digest of the package's source: an archive is used only by the code that built it."""
    return code_digest("labclip_utils")


def pack(cache_dir: str | Path, out_dir: str | Path, since: float | None = None,
         kinds: tuple[str, ...] = KINDS) -> Path:
    """Pack the cache entries of ``kinds`` (those used since ``since``, a timestamp, when given) into
    ``out_dir/labclip-artifacts-<version>.tar.gz`` and its ``.sha256``; returns the archive."""
    cache_dir, out_dir = Path(cache_dir), Path(out_dir)
    entries = sorted(p for kind in kinds for p in (cache_dir / kind).glob("*.safetensors")
                     if since is None or p.stat().st_mtime >= since)
    if not any(p.parent.name == "miniature" for p in entries):
        raise FileNotFoundError(f"{cache_dir}: no trained miniature in the cache; build the book first (make book)")
    version = f"{__version__}-{code_version()[:12]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"labclip-artifacts-{version}.tar.gz"
    manifest = {"version": version, "code": code_version(), "created": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                        time.gmtime()),
                "entries": [p.relative_to(cache_dir).as_posix() for p in entries]}

    def write(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz", compresslevel=1) as t:
            data = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
            for p in entries:
                t.add(p, arcname=p.relative_to(cache_dir).as_posix())

    atomic_write(archive, write)
    digest = sha256_of(archive)
    archive.with_name(archive.name + ".sha256").write_text(f"{digest}  {archive.name}\n")
    return archive


def install(archive: str | Path, cache_dir: str | Path, sha256: str | None = None) -> dict:
    """Check an archive (SHA-256, members, code version) and unpack its entries into ``cache_dir``; entries already
    there are kept. Returns its manifest. Raises ``ValueError`` naming the archive when it cannot be used."""
    archive, cache_dir = Path(archive), Path(cache_dir)
    if not archive.is_file():
        raise ValueError(f"{archive}: {'a folder, not an' if archive.is_dir() else 'no such'} archive file")
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ValueError(f"{cache_dir}: is a file, not a cache folder")
    if sha256 and sha256_of(archive) != sha256:
        raise ValueError(f"{archive}: sha256 differs from the published {sha256}")
    check_archive(archive, "tar")
    with tarfile.open(archive) as t:
        try:
            manifest = json.loads(t.extractfile(MANIFEST).read())
        except (KeyError, AttributeError, ValueError) as err:
            raise ValueError(f"{archive}: no readable {MANIFEST} ({err})") from err
        if not (isinstance(manifest, dict) and isinstance(manifest.get("entries"), list)
                and all(isinstance(e, str) for e in manifest["entries"])):
            raise ValueError(f"{archive}: {MANIFEST} has no 'entries' list of file names")
        if manifest.get("code") != code_version():
            raise ValueError(f"{archive}: built by another version of the code ({manifest.get('version')})")
        members = [m for m in t.getmembers() if m.isfile() and m.name in manifest["entries"]
                   and m.name.split("/")[0] in KINDS and not (cache_dir / m.name).exists()]
        tmp = cache_dir / f".artifacts-{os.getpid()}"
        try:
            t.extractall(tmp, members=members, filter="data")
            for m in members:  # every entry checked (its tensors against their stored SHA-256) before any is moved
                problem = entry_problem(tmp / m.name)
                if problem:
                    raise ValueError(f"{archive}: {m.name}: not a usable cache entry, {problem}; nothing installed")
            for m in members:
                target = cache_dir / m.name
                make_folder(target.parent)
                os.replace(tmp / m.name, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def ensure(cache_dir: str | Path, record: Published | None = None, verbose: bool = True) -> str:
    """Use the published archive when the cache has no miniature yet. Returns what happened: ``"cached"``,
    ``"installed"``, ``"not published"`` or ``"unusable: <why>"`` (the chapters then train the miniature)."""
    cache_dir = Path(cache_dir)
    if any((cache_dir / "miniature").glob("*.safetensors")):
        return "cached"
    record = record or published()
    if not record.url:
        if verbose:
            print("No prebuilt artefacts are published for this version of the book: the miniature is trained here, "
                  "once, and cached (a few minutes on 2 CPU cores).")
        return "not published"
    name = record.url.rstrip("/").rsplit("/", 1)[-1]
    try:
        start = time.perf_counter()
        path = fetch(RemoteFile(name, record.url, sha256=record.sha256), cache_dir / "downloads", progress=verbose,
                     dataset="artifacts")
        manifest = install(path, cache_dir, record.sha256)
    except (ValueError, ChecksumError, DownloadError, OSError) as err:
        if verbose:
            print(f"The prebuilt artefacts cannot be used ({err}); the miniature is trained here instead.")
        return f"unusable: {err}"
    if verbose:
        print(f"Installed the prebuilt artefacts {manifest['version']} ({len(manifest['entries'])} cache entries) in "
              f"{time.perf_counter() - start:.0f} s: chapters load the miniature instead of training it.")
    return "installed"
