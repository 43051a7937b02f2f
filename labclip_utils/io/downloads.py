"""Downloads: a file's official source (or a mirror of it), checksums, resumable and atomic, and archives that
cannot install garbage. The paper profile's datasets (which files, from where) are listed in
:mod:`labclip_utils.benchmarks.downloads`.

Nothing here runs unless asked (``fetch``, ``fetch_dataset`` or ``load_benchmark(..., download=True)``); the offline
profile never calls it. A file is downloaded to ``<name>.part``; an interrupted download resumes from there only if
the server still has the same file (same size and the same ETag/Last-Modified as when it started). Its SHA-256 is
checked, and only then is it renamed into place. Archives are tested completely before anything is unpacked, are
unpacked into a temporary folder, and are merged into the dataset folder without deleting anything they did not
bring.

**Checksums.** Where a SHA-256 is pinned below, a different file is refused. Files whose official hosts publish
no checksum are *recorded on first download* in ``<root>/checksums.json`` and verified on every later use; the
value is printed so that it can be pinned here. ``python -m labclip_utils downloads reset <folder> <file>`` forgets
a recorded hash (after the host replaced a file, say). Licence-restricted data (Flickr30k) is never fetched: the
error says where to request it and where to put it.

**Mirrors.** ``LABCLIP_MIRROR=<URL or folder>`` fetches every file, Google Drive ones included, from
``<mirror>/<dataset>/<official file name>`` instead: a class behind a firewall, or a teacher who downloaded COCO
once for a room, serves the same bytes (:mod:`labclip_utils.io.mirror` serves a folder). A mirror may publish
``<mirror>/SHA256SUMS`` (``sha256sum`` format); each file is then checked against the mirror's checksum, and a
mirror whose file differs from a pinned official one says so. Without an entry there, checksums are checked as for
the official hosts.

**Single files.** :func:`fetch_files` brings a fixed subset of a dataset image by image (COCO's images have official
per-image addresses) instead of a multi-GB archive: in parallel, each file through the same ``.part``, checksum and
rename as :func:`fetch`, from ``<mirror>/<dataset>/<relative path>`` under a mirror. No official per-image checksums
exist, so each file's SHA-256 is recorded on first download (keyed by its relative path) and verified afterwards.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import os
import shutil
import tarfile
import threading
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from labclip_utils.io.files import atomic_write, file_lock, make_folder
from labclip_utils.io.hashing import MANIFEST, parse_manifest, sha256_of
from labclip_utils.profile import mirror_source
from labclip_utils.progress import tqdm

GDRIVE = "gdrive"


class ChecksumError(RuntimeError):
    """A downloaded or cached file does not have the expected SHA-256."""


class DownloadError(RuntimeError):
    """A download or an archive could not be completed; the message names the file."""


class ManualDownloadRequired(RuntimeError):
    """The data's licence requires a manual download; the message says how."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it comes from, where it goes, and how to check it.

    ``filename`` is a name, or a relative path (``val2014/COCO_val2014_….jpg``, :func:`fetch_files`) in the dataset
    folder and in the mirror. ``url`` is an HTTP(S) address, or ``"gdrive"`` with ``gdrive_id``. ``extract`` unpacks
    an archive into the dataset folder (``"zip"`` or ``"tar"``); ``sha256=None`` means "record on first download".
    """

    filename: str
    url: str
    sha256: str | None = None
    gdrive_id: str | None = None
    extract: str | None = None
    size: str = "?"


# -- small state files ----------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    """A small JSON state file; a corrupted one is set aside (``.corrupt``) with a warning and rebuilt."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data
    except (ValueError, UnicodeDecodeError) as err:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(f"{path} was corrupted ({err}); moved to {aside.name} and rebuilt (recorded checksums in it "
                      "are recorded again on the next download)", RuntimeWarning, stacklevel=3)
        return {}


#: Serialises read-merge-write of the state files between threads (:func:`fetch_files` verifies files in parallel).
_STATE_LOCK = threading.Lock()


def _update_json(path: Path, entries: dict, remove: tuple[str, ...] = (), *, shared: bool = False) -> None:
    """Merge ``entries`` into (and drop ``remove`` from) a small JSON file, atomically and one writer at a time:
    threads of this process always, other processes too when ``shared`` (a dataset folder's ``checksums.json`` and
    ``.verified.json``, through ``<file>.lock``), so that no writer drops another's entries."""
    with _STATE_LOCK, (file_lock(path) if shared else contextlib.nullcontext()):
        data = {k: v for k, v in (_read_json(path) | entries).items() if k not in remove}
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1, sort_keys=True)))


def _recorded(root: Path) -> dict[str, str]:
    return _read_json(root / "checksums.json")


def _stamp(path: Path, digest: str) -> list:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, digest]


def reset_recorded(root: str | Path, filename: str) -> bool:
    """Forget the recorded checksum (and verification stamp) of ``filename`` in ``root``; True if there was one."""
    root = Path(root)
    had = filename in _recorded(root)
    for state in ("checksums.json", ".verified.json"):
        if (root / state).exists():
            _update_json(root / state, {}, remove=(filename,), shared=True)
    return had


def verify(path: Path, expected: str | None, root: Path, filename: str, announce: bool = True) -> str:
    """Check ``path`` against the pinned hash, else the recorded one, else record it (and print it, unless not
    ``announce``: :func:`fetch_files` sums up thousands of images in one line). Returns the hash."""
    digest = sha256_of(path)
    wanted = expected or _recorded(root).get(filename)
    if wanted is None:
        _update_json(root / "checksums.json", {filename: digest}, shared=True)
        if announce:
            print(f"recorded sha256 of {filename}: {digest} (pin it in labclip_utils/benchmarks/downloads.py)")
    elif digest != wanted:
        how = ("the hash is pinned in labclip_utils/benchmarks/downloads.py, or listed in the mirror's SHA256SUMS"
               if expected else
               f"if the source changed the file on purpose, forget the recorded hash with "
               f"`python -m labclip_utils downloads reset {root} {filename}`")
        raise ChecksumError(f"{path}: sha256 is {digest}, expected {wanted}; {how}")
    return digest


def verify_cached(path: Path, expected: str | None, root: Path, filename: str, announce: bool = True) -> str:
    """:func:`verify`, without re-hashing a file (gigabytes for COCO) whose size and modification time are those
    it had when it last passed (kept in ``<root>/.verified.json``)."""
    wanted = expected or _recorded(root).get(filename)
    stamps = root / ".verified.json"
    if wanted is not None and _read_json(stamps).get(filename) == _stamp(path, wanted):
        return wanted
    digest = verify(path, expected, root, filename, announce)
    _update_json(stamps, {filename: _stamp(path, digest)}, shared=True)
    return digest


# -- transfers ------------------------------------------------------------------------------------------------
_MANIFESTS: dict[str, dict[str, str]] = {}


def mirror_checksums() -> dict[str, str]:
    """The mirror's ``SHA256SUMS`` as ``"<dataset>/<file>" → sha256`` (empty without a mirror or a manifest). Read
    once per process and mirror; a malformed manifest is an error that names it."""
    base = mirror_source()
    if base is None:
        return {}
    if base not in _MANIFESTS:
        where = f"{base}/{MANIFEST}"
        if where.startswith(("http://", "https://")):
            import requests

            try:
                response = requests.get(where, timeout=60)
            except requests.RequestException as err:
                raise DownloadError(f"{MANIFEST}: cannot reach the mirror at {base} ({err})") from err
            if response.status_code == 404:
                text = ""
            elif response.status_code >= 400:
                raise DownloadError(f"{MANIFEST}: {where} answered HTTP {response.status_code}")
            else:
                text = response.text
        else:
            path = Path(where.removeprefix("file://"))
            text = path.read_text() if path.is_file() else ""
        _MANIFESTS[base] = parse_manifest(text, where)
    return _MANIFESTS[base]


def expected_checksum(dataset: str, remote: RemoteFile) -> str | None:
    """The SHA-256 a file must have: the mirror's, when its manifest lists the file, else the pinned one (None:
    record on first download)."""
    listed = mirror_checksums().get(f"{dataset}/{remote.filename}")
    if listed and remote.sha256 and listed != remote.sha256:
        print(f"NOTE: the mirror's {dataset}/{remote.filename} is not the official file (official sha256 "
              f"{remote.sha256[:12]}…, the mirror's {listed[:12]}…); it is checked against the mirror's checksum")
    return listed or remote.sha256


def source(dataset: str, remote: RemoteFile) -> str:
    """Where ``remote`` comes from: ``<mirror>/<dataset>/<file>`` under a mirror, else its official address."""
    base = mirror_source()
    if base:
        return f"{base}/{dataset}/{remote.filename}"
    return f"gdrive:{remote.gdrive_id}" if remote.url == GDRIVE else remote.url


def http_download(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest.part``, resuming only a ``.part`` of the very same remote file; does not rename.

    ``dest.part.json`` records the URL, size and validator (ETag or Last-Modified) the download started with; a
    resume sends them back (``If-Range``) and checks the server's ``Content-Range``, so a ``.part`` of an older
    version of the file, or one longer than the file, is discarded rather than completed into a mixture.
    """
    import requests

    part = dest.with_name(dest.name + ".part")
    state_path = dest.with_name(dest.name + ".part.json")
    state = _read_json(state_path) if part.exists() else {}
    have = part.stat().st_size if part.exists() else 0
    resumable = bool(have) and state.get("url") == url and state.get("length") and (
        state.get("etag") or state.get("last_modified"))
    if have and not resumable:
        part.unlink()
        have = 0
    headers = {}
    if resumable:
        headers = {"Range": f"bytes={have}-", "If-Range": state.get("etag") or state["last_modified"]}
    try:
        response = requests.get(url, stream=True, headers=headers, timeout=timeout)
    except requests.RequestException as err:
        raise DownloadError(f"{dest.name}: cannot reach {url} ({err})") from err
    with response:
        if response.status_code == 416:  # our part is not a prefix of the remote file: start again, once
            part.unlink(missing_ok=True)
            state_path.unlink(missing_ok=True)
            return http_download(url, dest, progress, timeout)
        if response.status_code >= 400:
            raise DownloadError(f"{dest.name}: {url} answered HTTP {response.status_code}")
        length = int(response.headers.get("Content-Length", 0) or 0)
        if response.status_code == 206:
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            start = response.headers.get("Content-Range", "bytes -").split()[-1].split("-")[0]
            if start != str(have) or total != str(state.get("length")):
                part.unlink(missing_ok=True)
                state_path.unlink(missing_ok=True)
                return http_download(url, dest, progress, timeout)
            total = int(total)
        else:  # a full answer (200): the file changed, or the server ignores ranges
            have, total = 0, length
            _update_json(state_path, {"url": url, "length": total, "etag": response.headers.get("ETag"),
                                      "last_modified": response.headers.get("Last-Modified")})
        bar = tqdm(total=total or None, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
        with open(part, "ab" if have else "wb") as f, bar:
            for block in response.iter_content(1 << 20):
                f.write(block)
                bar.update(len(block))
    size = part.stat().st_size
    if total and size != total:
        raise DownloadError(f"{dest.name}: the download stopped at {size} of {total} bytes; run again to resume")
    state_path.unlink(missing_ok=True)


def folder_copy(src: Path, dest: Path) -> None:
    """Copy a file from a mirror folder to ``dest.part``."""
    if not src.is_file():
        raise DownloadError(f"{dest.name}: the mirror has no {src}")
    shutil.copyfile(src, dest.with_name(dest.name + ".part"))


def gdrive_download(file_id: str, dest: Path, progress: bool = True) -> None:
    """Download a Google Drive file with gdown to ``dest.part`` (gdown resumes partial files)."""
    try:
        import gdown
    except ImportError as exc:
        raise RuntimeError("Google Drive downloads need gdown: pip install gdown") from exc
    part = dest.with_name(dest.name + ".part")
    if gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True) is None:
        raise DownloadError(f"{dest.name}: gdown could not fetch Google Drive file {file_id}")


def transfer(dataset: str, remote: RemoteFile, dest: Path, progress: bool = True) -> None:
    """Bring ``remote`` to ``dest.part`` from its source (official, or the mirror)."""
    where = source(dataset, remote)
    if where.startswith(("http://", "https://")):
        http_download(where, dest, progress)
    elif where.startswith("gdrive:"):
        gdrive_download(remote.gdrive_id or "", dest, progress)
    else:
        folder_copy(Path(where.removeprefix("file://")), dest)


# -- archives -------------------------------------------------------------------------------------------------
def _check_members(names: list[str], archive: Path) -> None:
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise DownloadError(f"{archive}: refusing to unpack {name!r} outside the dataset folder")
        if "\\" in name:
            raise DownloadError(f"{archive}: member {name!r} uses backslashes as folder separators (a zip made on "
                                "Windows?); repack it with '/'")


def _check_links(members: list[tarfile.TarInfo], archive: Path) -> None:
    """Refuse tar links that point outside the archive (absolute, or through ``..``) and device files."""
    for m in members:
        if (m.issym() or m.islnk()) and (m.linkname.startswith("/") or ".." in Path(m.linkname).parts):
            raise DownloadError(f"{archive}: refusing to unpack link {m.name!r} -> {m.linkname!r} (it points outside "
                                "the dataset folder)")
        if m.isdev():
            raise DownloadError(f"{archive}: refusing to unpack device file {m.name!r}")


def _read_whole_stream(archive: Path) -> None:
    """Decompress a tar's whole gzip/bzip2/xz stream, so that the checksum at its end is checked (reading the
    members stops before it)."""
    with open(archive, "rb") as f:
        magic = f.read(6)
    opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open, b"\xfd7": lzma.open}.get(magic[:2])
    if opener is not None:
        with opener(archive, "rb") as stream:
            while stream.read(1 << 20):
                pass


def check_archive(archive: Path, kind: str) -> None:
    """Read the whole archive (every member's data and checksum) before anything is unpacked."""
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                _check_members(z.namelist(), archive)
                bad = z.testzip()
                if bad is not None:
                    raise DownloadError(f"{archive}: member {bad!r} is corrupted")
        elif kind == "tar":
            with tarfile.open(archive) as t:
                members = t.getmembers()
                _check_members([m.name for m in members], archive)
                _check_links(members, archive)
                for m in members:
                    if m.isfile():
                        handle = t.extractfile(m)
                        while handle is not None and handle.read(1 << 20):
                            pass
            _read_whole_stream(archive)
        else:
            raise ValueError(f"unknown archive kind {kind!r}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as err:
        raise DownloadError(f"{archive}: not a complete {kind} archive ({err})") from err


def _merge(src: Path, dst: Path) -> None:
    """Move ``src``'s tree into ``dst``: files replace files of the same path; nothing else in ``dst`` is touched."""
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if target.exists() and not target.is_dir():
                raise DownloadError(f"{target}: a file is in the way of the archive's folder {entry.name}")
            target.mkdir(exist_ok=True)
            _merge(entry, target)
        else:
            if target.is_dir():
                raise DownloadError(f"{target}: a folder is in the way of the archive's file {entry.name}")
            os.replace(entry, target)


def extract(archive: Path, root: Path, kind: str) -> None:
    """Test the archive, unpack it into a temporary folder inside ``root``, then merge it into place."""
    check_archive(archive, kind)
    tmp = root / f".extract-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                z.extractall(tmp)
        else:
            with tarfile.open(archive) as t:
                t.extractall(tmp, filter="data")
        _merge(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- fetching -------------------------------------------------------------------------------------------------
def fetch(remote: RemoteFile, root: Path, progress: bool = True, dataset: str = "") -> Path:
    """Make sure ``remote`` is in ``root`` (downloaded, verified, unpacked); return its path. Safe to call twice,
    from several processes at once."""
    root.mkdir(parents=True, exist_ok=True)
    dest = root / remote.filename
    dataset = dataset or root.name
    expected = expected_checksum(dataset, remote)
    with file_lock(dest):
        return _bring(remote, root, dataset, expected, progress)


def _bring(remote: RemoteFile, root: Path, dataset: str, expected: str | None, progress: bool,
           announce: bool = True) -> Path:
    """:func:`fetch`'s work, under a lock its caller holds: verify ``root/<remote.filename>`` if present, else
    transfer it to ``.part``, verify that, rename it into place (and unpack an archive)."""
    dest = root / remote.filename
    done = dest.with_name(f".{dest.name}.extracted")
    if dest.is_file() and (remote.extract is None or done.exists()):
        verify_cached(dest, expected, root, remote.filename, announce)
        return dest
    recorded_now = False
    if not dest.is_file():
        make_folder(dest.parent)
        transfer(dataset, remote, dest, progress)
        part = dest.with_name(dest.name + ".part")
        recorded_now = expected is None and remote.filename not in _recorded(root)
        try:
            digest = verify(part, expected, root, remote.filename, announce)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)  # keeps size and mtime, so the stamp below describes dest
        _update_json(root / ".verified.json", {remote.filename: _stamp(dest, digest)}, shared=True)
    if remote.extract:
        try:
            extract(dest, root, remote.extract)
        except DownloadError:
            # a broken archive: remove it, and the checksum it was just recorded with, so that the next call
            # downloads it again instead of refusing every good copy
            dest.unlink(missing_ok=True)
            if recorded_now:
                reset_recorded(root, remote.filename)
            raise
        done.touch()
    return dest


def _relative(entry: object, index: int) -> str:
    """A file's relative path from an annotation file, as ``a/b.jpg``; refuses what could land outside the folder
    or on the folder's own state files (absolute, ``..``, ``.``, empty or hidden parts, backslashes)."""
    if not (isinstance(entry, tuple | list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)):
        raise ValueError(f"files[{index}] = {entry!r}: expected a (relative path, URL) pair of strings")
    relative = entry[0]
    parts = relative.split("/")
    bad = ("it is empty" if not relative.strip() else
           "it is absolute" if relative.startswith("/") or PurePosixPath(relative).is_absolute() else
           "it uses backslashes" if "\\" in relative else
           "it has a '..' part" if ".." in parts else
           "it has an empty or '.' part" if any(p in ("", ".") for p in parts) else
           "it has a hidden part (the folder's state files are hidden)" if any(p.startswith(".") for p in parts) else
           "it is the folder's checksum record" if relative == "checksums.json" else
           "it contains a NUL character" if "\0" in relative else None)
    if bad:
        raise ValueError(f"files[{index}]: refusing relative path {relative!r} ({bad})")
    return relative


def fetch_files(dataset: str, files: Sequence[tuple[str, str]], root: str | Path, *, workers: int = 8,
                progress: bool = True) -> list[Path]:
    """Bring each ``(relative path, official URL)`` of ``files`` to ``root/<relative path>``; return those paths in
    the given order.

    For a small, fixed subset of a dataset, fetched file by file instead of a multi-GB archive: ``workers`` threads,
    one progress bar counting files. Each file goes through :func:`fetch`'s steps (from ``<mirror>/<dataset>/<relative
    path>`` under a mirror, checked against its ``SHA256SUMS`` entry when it has one; to ``.part``, renamed only once
    verified), and its SHA-256 is recorded in ``root/checksums.json`` on first download; present files are verified,
    not downloaded again. Paths come from annotation files, so they are checked first (``ValueError``). Files that
    fail do not stop the others; then one :class:`DownloadError` names how many failed and the first few, with why.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    root = Path(root)
    wanted = [(_relative(entry, i), entry[1]) for i, entry in enumerate(files)]
    unique: dict[str, str] = {}
    for relative, url in wanted:
        if unique.setdefault(relative, url) != url:
            raise ValueError(f"{dataset}: {relative!r} is listed with two URLs, {unique[relative]} and {url}")
    paths = [root / relative for relative, _ in wanted]
    if not unique:
        return paths
    mirror_checksums()  # read the mirror's manifest once, here, rather than in every thread
    order = {relative: i for i, relative in enumerate(unique)}
    failures: list[tuple[str, BaseException]] = []
    with file_lock(root / ".fetch_files"):  # one writer per folder across processes; threads take distinct files
        known = set(_recorded(root))

        def one(relative: str) -> None:
            remote = RemoteFile(relative, unique[relative])
            _bring(remote, root, dataset, expected_checksum(dataset, remote), progress=False, announce=False)

        with ThreadPoolExecutor(max_workers=min(workers, len(unique))) as pool, \
                tqdm(total=len(unique), unit="file", desc=f"{dataset} files", disable=not progress) as bar:
            jobs = {pool.submit(one, relative): relative for relative in unique}
            for job in as_completed(jobs):
                error = job.exception()
                if error is not None:
                    failures.append((jobs[job], error))
                bar.update(1)
        now = _recorded(root)
        recorded = [r for r in unique if r not in known and r in now]
    if recorded:
        print(f"recorded the sha256 of {len(recorded)} {dataset} files in {root / 'checksums.json'} (no official "
              "per-file checksums exist); they are verified on every later use")
    if failures:
        failures.sort(key=lambda failure: order[failure[0]])
        shown = "; ".join(f"{relative}: {error if isinstance(error, DownloadError | ChecksumError) else repr(error)}"
                          for relative, error in failures[:5])
        more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
        raise DownloadError(f"{dataset}: {len(failures)} of {len(unique)} files could not be fetched into {root} "
                            f"({shown}{more}); the others are in place, and a new call fetches only what is "
                            "missing") from failures[0][1]
    return paths
