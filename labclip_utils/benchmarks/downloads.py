"""Downloads for the paper profile: each dataset's official source, checksums, resumable and atomic.

Nothing here runs unless asked (``fetch_dataset`` or ``load_benchmark(..., download=True)``); the offline
profile never calls it. A file is downloaded to ``<name>.part`` (an interrupted download resumes from there),
its SHA-256 is checked, and only then is it renamed into place; archives are unpacked into a temporary folder
that is renamed when complete.

**Checksums.** Where a SHA-256 is pinned below, a different file is refused. Files whose official hosts publish
no checksum are *recorded on first download* in ``<root>/checksums.json`` and verified on every later use, and
the value is printed so that it can be pinned here. Licence-restricted data (Flickr30k) is never fetched: the
error says where to request it and where to put it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from tqdm.auto import tqdm

GDRIVE = "gdrive"


class ChecksumError(RuntimeError):
    """A downloaded or cached file does not have the expected SHA-256."""


class ManualDownloadRequired(RuntimeError):
    """The data's licence requires a manual download; the message says how."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it comes from, where it goes, and how to check it.

    ``url`` is an HTTP(S) address, or ``"gdrive"`` with ``gdrive_id``. ``extract`` unpacks an archive into the
    dataset folder (``"zip"`` or ``"tar"``); ``sha256=None`` means "record on first download".
    """

    filename: str
    url: str
    sha256: str | None = None
    gdrive_id: str | None = None
    extract: str | None = None
    size: str = "?"


_SFR = "https://storage.googleapis.com/sfr-vision-language-research/datasets"
_SUGARCREPE = "https://raw.githubusercontent.com/RAIVNLab/sugar-crepe/main/data"
_SUGARCREPE_SUBSETS = ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")

#: Every dataset of the paper profile, by folder name under the data directory (sources:
#: ``shared/reference/labclip-paper.md`` §4 and the benchmarks' own READMEs).
DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "coco": (
        RemoteFile("coco_karpathy_test.json", f"{_SFR}/coco_karpathy_test.json", size="about 2 MB"),
        RemoteFile("val2014.zip", "http://images.cocodataset.org/zips/val2014.zip", extract="zip", size="6.2 GB"),
    ),
    "coco_train": (
        RemoteFile("coco_karpathy_train.json", f"{_SFR}/coco_karpathy_train.json", size="about 80 MB"),
        RemoteFile("train2014.zip", "http://images.cocodataset.org/zips/train2014.zip", extract="zip", size="13 GB"),
        RemoteFile("val2014.zip", "http://images.cocodataset.org/zips/val2014.zip", extract="zip", size="6.2 GB"),
    ),
    "aro": (
        RemoteFile("visual_genome_relation.json", GDRIVE, gdrive_id="1kX2iCHEv0CADL8dSO1nMdW-V0NqIAiP3"),
        RemoteFile("visual_genome_attribution.json", GDRIVE, gdrive_id="13tWvOrNOLHxl3Rm9cR3geAdHx2qR3-Tw"),
        RemoteFile("vgr_vga_images.zip", GDRIVE, gdrive_id="1qaPlrwhGNMrR3a11iopZUT_GPP_LrgP9", extract="zip",
                   size="about 1 GB"),
    ),
    "sugarcrepe": (
        *(RemoteFile(f"{s}.json", f"{_SUGARCREPE}/{s}.json") for s in _SUGARCREPE_SUBSETS),
        RemoteFile("val2017.zip", "http://images.cocodataset.org/zips/val2017.zip", extract="zip", size="0.8 GB"),
    ),
    "pug_spar": (
        RemoteFile("PUG_SPAR.tar.gz", "https://dl.fbaipublicfiles.com/large_objects/pug/PUG_SPAR.tar.gz",
                   extract="tar", size="about 16 GB"),
    ),
    "pug_spare": (
        RemoteFile("PUG_SPARE.csv", GDRIVE, gdrive_id="1lGkG51-wKRhiIb__NkftvOud9QXEc41e"),
        RemoteFile("Desert.zip", GDRIVE, gdrive_id="1JW0sApth_vaHgMrX1zhHa-L9SZVfUF1H", extract="zip"),
        RemoteFile("Island.zip", GDRIVE, gdrive_id="17GuDFHt0z8nofC2TXDOxQnb1Wp9O4Ws4", extract="zip"),
        RemoteFile("MountainRange.zip", GDRIVE, gdrive_id="18xaLyYq1hEEUuOe6KoSKfjvHsqvMitfA", extract="zip"),
        RemoteFile("Spaceship.zip", GDRIVE, gdrive_id="1mVEg_eLWkGjeuCd3iXPbpx5MFdXgqBnu", extract="zip"),
    ),
    "flickr30k": (
        RemoteFile("flickr30k_test.json", f"{_SFR}/flickr30k_test.json", size="about 1 MB"),
    ),
}

#: Data whose licence requires a manual step, with the instructions shown to the user.
MANUAL: dict[str, str] = {
    "flickr30k": (
        "Flickr30k images may only be obtained after accepting their terms: request them at "
        "https://shannon.cs.illinois.edu/DenotationGraph/ (or the Kaggle mirror 'hsankesara/flickr-image-dataset'), "
        "then unpack them so that the images are at {root}/flickr30k-images/<id>.jpg."
    ),
}


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _update_json(path: Path, entries: dict) -> None:
    """Merge ``entries`` into a small JSON file, atomically."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(_read_json(path) | entries, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _recorded(root: Path) -> dict[str, str]:
    return _read_json(root / "checksums.json")


def _record(root: Path, filename: str, digest: str) -> None:
    _update_json(root / "checksums.json", {filename: digest})


def _stamp(path: Path, digest: str) -> list:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, digest]


def verify(path: Path, expected: str | None, root: Path, filename: str) -> str:
    """Check ``path`` against the pinned hash, else the recorded one, else record it. Returns the hash."""
    digest = sha256_of(path)
    wanted = expected or _recorded(root).get(filename)
    if wanted is None:
        _record(root, filename, digest)
        print(f"recorded sha256 of {filename}: {digest} (pin it in labclip_utils/benchmarks/downloads.py)")
    elif digest != wanted:
        raise ChecksumError(f"{path}: sha256 is {digest}, expected {wanted}; delete the file to download it again")
    return digest


def verify_cached(path: Path, expected: str | None, root: Path, filename: str) -> str:
    """:func:`verify`, without re-hashing a file (gigabytes for COCO) whose size and modification time are those
    it had when it last passed (kept in ``<root>/.verified.json``)."""
    wanted = expected or _recorded(root).get(filename)
    stamps = root / ".verified.json"
    if wanted is not None and _read_json(stamps).get(filename) == _stamp(path, wanted):
        return wanted
    digest = verify(path, expected, root, filename)
    _update_json(stamps, {filename: _stamp(path, digest)})
    return digest


def http_download(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> None:
    """Download ``url`` to ``dest.part``, resuming from what is already there; does not rename (see ``fetch``)."""
    import requests

    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with requests.get(url, stream=True, headers=headers, timeout=timeout) as response:
        if response.status_code == 416:  # already complete
            return
        response.raise_for_status()
        if have and response.status_code != 206:  # the server ignored the range: start again
            have = 0
        total = int(response.headers.get("Content-Length", 0)) + have
        bar = tqdm(total=total or None, initial=have, unit="B", unit_scale=True, desc=dest.name,
                   disable=not progress)
        with open(part, "ab" if have else "wb") as f, bar:
            for block in response.iter_content(1 << 20):
                f.write(block)
                bar.update(len(block))


def gdrive_download(file_id: str, dest: Path, progress: bool = True) -> None:
    """Download a Google Drive file with gdown to ``dest.part`` (gdown resumes partial files)."""
    try:
        import gdown
    except ImportError as exc:
        raise RuntimeError("Google Drive downloads need gdown: pip install gdown") from exc
    part = dest.with_name(dest.name + ".part")
    if gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True) is None:
        raise RuntimeError(f"gdown could not fetch Google Drive file {file_id} for {dest.name}")


def _safe_members(names: list[str], archive: Path) -> None:
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"{archive}: refusing to unpack {name!r} outside the dataset folder")


def extract(archive: Path, root: Path, kind: str) -> None:
    """Unpack into a temporary folder inside ``root``, then move each top-level entry into place."""
    tmp = root / f".extract-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as z:
                _safe_members(z.namelist(), archive)
                z.extractall(tmp)
        elif kind == "tar":
            with tarfile.open(archive) as t:
                _safe_members(t.getnames(), archive)
                t.extractall(tmp, filter="data")
        else:
            raise ValueError(f"unknown archive kind {kind!r}")
        for entry in tmp.iterdir():
            target = root / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(remote: RemoteFile, root: Path, progress: bool = True) -> Path:
    """Make sure ``remote`` is in ``root`` (downloaded, verified, unpacked); return its path. Safe to call twice,
    from several processes at once."""
    root.mkdir(parents=True, exist_ok=True)
    dest = root / remote.filename
    done = root / f".{remote.filename}.extracted"
    with FileLock(str(dest) + ".lock"):
        if dest.is_file() and (remote.extract is None or done.exists()):
            verify_cached(dest, remote.sha256, root, remote.filename)
            return dest
        if not dest.is_file():
            if remote.url == GDRIVE:
                gdrive_download(remote.gdrive_id or "", dest, progress)
            else:
                http_download(remote.url, dest, progress)
            part = dest.with_name(dest.name + ".part")
            try:
                digest = verify(part, remote.sha256, root, remote.filename)
            except ChecksumError:
                part.unlink(missing_ok=True)
                raise
            os.replace(part, dest)  # keeps size and mtime, so the stamp below describes dest
            _update_json(root / ".verified.json", {remote.filename: _stamp(dest, digest)})
        if remote.extract:
            extract(dest, root, remote.extract)
            done.touch()
        return dest


def fetch_dataset(name: str, root: str | Path, progress: bool = True) -> Path:
    """Download every file of dataset ``name`` into ``root`` and return ``root``.

    Raises :class:`ManualDownloadRequired` (with instructions) for data that must be requested by hand.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    root = Path(root)
    for remote in DATASETS[name]:
        fetch(remote, root, progress)
    if name in MANUAL and not (root / "flickr30k-images").is_dir():
        raise ManualDownloadRequired(MANUAL[name].format(root=root))
    return root
