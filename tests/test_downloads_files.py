"""Single files (``fetch_files``): a subset of a dataset fetched file by file, in parallel, each checked, none twice."""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import time

import pytest

from labclip_utils.io import downloads
from labclip_utils.io.mirror import serve, write_manifest
from labclip_utils.profile import MIRROR_ENV

N = 12


@pytest.fixture(autouse=True)
def _fresh_manifests():
    downloads._MANIFESTS.clear()
    yield
    downloads._MANIFESTS.clear()


@pytest.fixture
def images(tmp_path):
    """A mirror folder with ``N`` small COCO-like images in ``coco/val2014/`` (no SHA256SUMS), and their entries."""
    mirror = tmp_path / "mirror"
    (mirror / "coco" / "val2014").mkdir(parents=True)
    files = []
    for i in range(N):
        relative = f"val2014/COCO_val2014_{i:012d}.jpg"
        (mirror / "coco" / relative).write_bytes(b"\xff\xd8" + hashlib.sha256(str(i).encode()).digest() * (i + 1))
        files.append((relative, f"https://images.example.invalid/{relative}"))
    return mirror, files


def leftovers(root):
    """Temporary files (``.part``, ``.part.json``, atomic writers' ``.tmp``) anywhere under ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.name.endswith((".part", ".part.json", ".tmp")))


def test_files_come_in_parallel_from_the_mirror_are_recorded_and_never_twice(images, tmp_path, monkeypatch,
                                                                               capsys):
    mirror, files = images
    active, peak, lock = [0], [0], threading.Lock()
    real = downloads.http_download

    def slow_download(*args, **kwargs):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(downloads, "http_download", slow_download)
    usage: dict = {}
    root = tmp_path / "class" / "coco"
    with serve(mirror, usage=usage) as url:
        monkeypatch.setenv(MIRROR_ENV, f"{url}/@notebook")
        paths = downloads.fetch_files("coco", files, root, workers=4, progress=False)
        assert paths == [root / relative for relative, _ in files]
        for (relative, _), path in zip(files, paths, strict=True):
            assert path.read_bytes() == (mirror / "coco" / relative).read_bytes()
        assert peak[0] > 1, "the files were fetched one after another"
        sizes = {f"coco/{relative}": (mirror / "coco" / relative).stat().st_size for relative, _ in files}
        first = copy.deepcopy(usage)  # complete: the server counts a block before it sends it
        assert first["notebook"]["files"] == sizes and first["notebook"]["bytes"] == sum(sizes.values())
        assert first["notebook"]["requests"] == N + 1  # and the mirror's SHA256SUMS (absent here)
        recorded = downloads._recorded(root)
        assert recorded == {relative: downloads.sha256_of(root / relative) for relative, _ in files}
        assert f"recorded the sha256 of {N} coco files" in capsys.readouterr().out
        assert leftovers(root) == []

        again = downloads.fetch_files("coco", files, root, workers=4, progress=False)
        assert again == paths
        assert usage == first, "the second call downloaded something"
        assert "recorded" not in capsys.readouterr().out


def test_a_file_changed_after_its_download_is_refused_by_name(images, tmp_path, monkeypatch):
    mirror, files = images
    root = tmp_path / "coco"
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    downloads.fetch_files("coco", files, root, progress=False)
    changed = files[3][0]
    (root / changed).write_bytes(b"edited by someone")
    with pytest.raises(downloads.DownloadError, match=rf"coco: 1 of {N} files.*{changed}.*sha256 is") as err:
        downloads.fetch_files("coco", files, root, progress=False)
    assert isinstance(err.value.__cause__, downloads.ChecksumError)
    assert "downloads reset" in str(err.value)
    assert (root / changed).read_bytes() == b"edited by someone", "a refused file is left for a person to look at"


def test_missing_files_are_named_and_the_others_complete(images, tmp_path, monkeypatch):
    mirror, files = images
    missing = [files[i][0] for i in (1, 2, 4, 6, 8, 9, 11)]
    for relative in missing:
        (mirror / "coco" / relative).unlink()
    root = tmp_path / "coco"
    with serve(mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        with pytest.raises(downloads.DownloadError) as err:
            downloads.fetch_files("coco", files, root, workers=3, progress=False)
    message = str(err.value)
    assert message.startswith(f"coco: {len(missing)} of {N} files could not be fetched into {root}")
    named = [relative for relative in missing if relative in message]
    assert named == missing[:5] and "HTTP 404" in message and "and 2 more" in message
    for relative, _ in files:
        if relative in missing:
            assert not (root / relative).exists()
        else:
            assert (root / relative).read_bytes() == (mirror / "coco" / relative).read_bytes()
    assert leftovers(root) == []


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.jpg", "val2014/../../outside.jpg", "", "val2014/",
                                 "val2014//x.jpg", "./x.jpg", ".verified.json", "val2014/.x.jpg", "checksums.json",
                                 "val2014\\x.jpg"])
def test_relative_paths_that_could_escape_are_refused_before_anything_is_fetched(images, tmp_path, monkeypatch, bad):
    mirror, files = images
    usage: dict = {}
    with serve(mirror, usage=usage) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        with pytest.raises(ValueError, match=rf"files\[1\]: refusing relative path {re.escape(repr(bad))}"):
            downloads.fetch_files("coco", [files[0], (bad, "https://x.invalid/y.jpg")], tmp_path / "coco",
                                  progress=False)
    assert usage == {} and not (tmp_path / "coco").exists()


def test_a_file_listed_twice_is_fetched_once_and_conflicting_urls_are_refused(images, tmp_path, monkeypatch):
    mirror, files = images
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    root = tmp_path / "coco"
    paths = downloads.fetch_files("coco", [files[0], files[1], files[0]], root, progress=False)
    assert paths == [root / files[0][0], root / files[1][0], root / files[0][0]]
    with pytest.raises(ValueError, match="listed with two URLs"):
        downloads.fetch_files("coco", [files[0], (files[0][0], "https://elsewhere.invalid/a.jpg")], root,
                              progress=False)
    with pytest.raises(ValueError, match=r"files\[0\].*pair of strings"):
        downloads.fetch_files("coco", ["val2014/a.jpg"], root, progress=False)  # type: ignore[list-item]


def test_the_mirrors_manifest_lists_single_files_and_a_mismatch_is_refused(images, tmp_path, monkeypatch):
    mirror, files = images
    write_manifest(mirror, progress=False)
    assert f"coco/{files[0][0]}" in (mirror / "SHA256SUMS").read_text()
    bad = files[5][0]
    (mirror / "coco" / bad).write_bytes(b"not the file the manifest lists")
    root = tmp_path / "coco"
    with serve(mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, f"{url}/@tagged")
        with pytest.raises(downloads.DownloadError, match=rf"coco: 1 of {N} files.*{bad}.*SHA256SUMS") as err:
            downloads.fetch_files("coco", files, root, progress=False)
    assert isinstance(err.value.__cause__, downloads.ChecksumError)
    assert not (root / bad).exists() and leftovers(root) == []
    assert all((root / relative).is_file() for relative, _ in files if relative != bad)
    assert downloads._recorded(root) == {}, "files the mirror lists are checked against it, not recorded"


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_folder_mirror_serves_single_files(images, tmp_path, monkeypatch, scheme):
    mirror, files = images
    monkeypatch.setenv(MIRROR_ENV, f"{scheme}{mirror}")
    root = tmp_path / "coco"
    paths = downloads.fetch_files("coco", files[:3], root, workers=2, progress=False)
    assert [p.read_bytes() for p in paths] == [(mirror / "coco" / r).read_bytes() for r, _ in files[:3]]
    assert set(downloads._recorded(root)) == {r for r, _ in files[:3]}


def test_without_a_mirror_files_come_from_their_official_addresses(images, tmp_path, monkeypatch):
    mirror, files = images
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    usage: dict = {}
    with serve(mirror, usage=usage) as url:
        official = [(relative, f"{url}/@official/coco/{relative}") for relative, _ in files[:4]]
        paths = downloads.fetch_files("coco", official, tmp_path / "coco", progress=False)
        assert usage["official"]["bytes"] == sum(p.stat().st_size for p in paths)
        assert usage["official"]["requests"] == 4
    assert set(usage) == {"official"}


def test_checksum_records_from_many_threads_lose_nothing(tmp_path):
    def record(worker: int) -> None:
        for i in range(25):
            downloads._update_json(tmp_path / "checksums.json", {f"{worker}/{i}": "x"}, shared=True)

    threads = [threading.Thread(target=record, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(downloads._recorded(tmp_path)) == 8 * 25
