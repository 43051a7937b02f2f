"""Mirrors: a served folder with byte ranges and a manifest, and a broken mirror file that fails with its name."""

from __future__ import annotations

import json
import sys
import zipfile

import pytest
import requests

from labclip_utils.benchmarks import downloads as datasets
from labclip_utils.io import downloads
from labclip_utils.io.hashing import MANIFEST, parse_manifest
from labclip_utils.io.mirror import MirrorHandler, serve, write_manifest
from labclip_utils.profile import MIRROR_ENV
from tests.conftest import ROOT


@pytest.fixture
def small_mirror(tmp_path):
    """A mirror of two datasets in their real formats: SugarCrepe's JSON and image zip, and ARO's relation JSON."""
    mirror = tmp_path / "mirror"
    (mirror / "sugarcrepe").mkdir(parents=True)
    (tmp_path / "src" / "val2017").mkdir(parents=True)
    (tmp_path / "src" / "val2017" / "000000000001.jpg").write_bytes(b"\xff\xd8" + b"x" * 5000)
    with zipfile.ZipFile(mirror / "sugarcrepe" / "val2017.zip", "w") as z:
        z.write(tmp_path / "src" / "val2017" / "000000000001.jpg", "val2017/000000000001.jpg")
    (mirror / "sugarcrepe" / "swap_att.json").write_text('{"0": {"filename": "000000000001.jpg"}}')
    write_manifest(mirror, progress=False)
    return mirror


@pytest.fixture(autouse=True)
def _fresh_manifests():
    downloads._MANIFESTS.clear()
    yield
    downloads._MANIFESTS.clear()


def test_server_answers_ranges_and_validators(small_mirror):
    data = (small_mirror / "sugarcrepe" / "val2017.zip").read_bytes()
    with serve(small_mirror) as url:
        full = requests.get(f"{url}/sugarcrepe/val2017.zip", timeout=10)
        assert full.status_code == 200 and full.content == data and full.headers["ETag"]
        part = requests.get(f"{url}/sugarcrepe/val2017.zip", headers={"Range": "bytes=100-"}, timeout=10)
        assert part.status_code == 206 and part.content == data[100:]
        assert part.headers["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
        stale = requests.get(f"{url}/sugarcrepe/val2017.zip", timeout=10,
                             headers={"Range": "bytes=100-", "If-Range": '"another-version"'})
        assert stale.status_code == 200 and stale.content == data  # a changed file is sent whole
        beyond = requests.get(f"{url}/sugarcrepe/val2017.zip", headers={"Range": f"bytes={len(data)}-"}, timeout=10)
        assert beyond.status_code == 416
        assert requests.get(f"{url}/sugarcrepe/nothing.zip", timeout=10).status_code == 404


def test_fetch_through_a_served_mirror_checks_the_manifest(small_mirror, tmp_path, monkeypatch):
    with serve(small_mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        folder = downloads.fetch(downloads.RemoteFile("val2017.zip", "https://example.invalid/val2017.zip",
                                                      extract="zip"), tmp_path / "data", progress=False,
                                 dataset="sugarcrepe")
        assert (folder.parent / "val2017" / "000000000001.jpg").is_file()
        # interrupted: a third of the file in .part, resumed from the mirror with a Range request
        dest = tmp_path / "again" / "val2017.zip"
        dest.parent.mkdir()
        data = (small_mirror / "sugarcrepe" / "val2017.zip").read_bytes()
        head = requests.head(f"{url}/sugarcrepe/val2017.zip", timeout=10)
        dest.with_name("val2017.zip.part").write_bytes(data[: len(data) // 3])
        dest.with_name("val2017.zip.part.json").write_text(json.dumps(
            {"url": f"{url}/sugarcrepe/val2017.zip", "length": len(data), "etag": head.headers["ETag"]}))
        served = []
        monkeypatch.setattr(MirrorHandler, "log_message", lambda self, fmt, *args: served.append(
            self.headers.get("Range")))
        downloads.http_download(f"{url}/sugarcrepe/val2017.zip", dest, progress=False)
        assert dest.with_name("val2017.zip.part").read_bytes() == data
        assert served == [f"bytes={len(data) // 3}-"], "only the missing bytes were requested"


def test_a_broken_mirror_file_fails_with_its_name(small_mirror, tmp_path, monkeypatch):
    archive = small_mirror / "sugarcrepe" / "val2017.zip"
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])  # truncated after the manifest was written: a bad checksum
    remote = downloads.RemoteFile("val2017.zip", "https://example.invalid/val2017.zip", extract="zip")
    with serve(small_mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        with pytest.raises(downloads.ChecksumError, match=r"val2017\.zip.*SHA256SUMS"):
            downloads.fetch(remote, tmp_path / "a", progress=False, dataset="sugarcrepe")
        assert not (tmp_path / "a" / "val2017.zip").exists() and not (tmp_path / "a" / "val2017").exists()
        # the same truncated archive listed with its own checksum: the archive test names it, nothing is unpacked
        write_manifest(small_mirror, progress=False)
        downloads._MANIFESTS.clear()
        with pytest.raises(downloads.DownloadError, match=r"val2017\.zip: not a complete zip archive"):
            downloads.fetch(remote, tmp_path / "b", progress=False, dataset="sugarcrepe")
        assert not (tmp_path / "b" / "val2017.zip").exists() and not (tmp_path / "b" / "val2017").exists()


def test_rehearsal_prefetch_stops_at_a_broken_file(small_mirror, tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "tools"))
    import rehearse

    (small_mirror / "sugarcrepe" / "swap_att.json").write_text("tampered")
    with serve(small_mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        monkeypatch.setitem(datasets.DATASETS, "sugarcrepe", (
            downloads.RemoteFile("swap_att.json", "https://example.invalid/swap_att.json"),))
        with pytest.raises(downloads.ChecksumError, match="swap_att.json"):
            rehearse.prefetch(tmp_path / "data", datasets=("sugarcrepe",))


def test_manifest_format_errors_name_the_file():
    assert parse_manifest(f"{'a' * 64}  coco/val2014.zip\n\n", "m") == {"coco/val2014.zip": "a" * 64}
    with pytest.raises(ValueError, match="SHA256SUMS: line 2"):
        parse_manifest(f"{'a' * 64}  x\nnot a checksum line\n", MANIFEST)


def test_server_counts_the_bytes_it_sends_per_client_tag(small_mirror):
    zip_data = (small_mirror / "sugarcrepe" / "val2017.zip").read_bytes()
    json_data = (small_mirror / "sugarcrepe" / "swap_att.json").read_bytes()
    sums = (small_mirror / MANIFEST).read_bytes()
    usage: dict = {}
    with serve(small_mirror, usage=usage) as url:
        plain = requests.get(f"{url}/sugarcrepe/val2017.zip", timeout=10)
        tagged = requests.get(f"{url}/@07_benchmarks/sugarcrepe/val2017.zip", timeout=10)
        assert tagged.status_code == 200 and tagged.content == zip_data
        assert tagged.headers["ETag"] == plain.headers["ETag"]
        assert requests.get(f"{url}/@07_benchmarks/{MANIFEST}", timeout=10).content == sums
        ranged = requests.get(f"{url}/@a.b-c/sugarcrepe/val2017.zip", headers={"Range": "bytes=100-199"}, timeout=10)
        assert ranged.status_code == 206 and ranged.content == zip_data[100:200]
        assert ranged.headers["Content-Range"] == f"bytes 100-199/{len(zip_data)}"
        stale = requests.get(f"{url}/@a.b-c/sugarcrepe/swap_att.json", timeout=10,
                             headers={"Range": "bytes=5-", "If-Range": '"another-version"'})
        assert stale.status_code == 200 and stale.content == json_data
        head = requests.head(f"{url}/@a.b-c/sugarcrepe/swap_att.json", timeout=10)
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(json_data))
        assert requests.get(f"{url}/@a.b-c/sugarcrepe/nothing.zip", timeout=10).status_code == 404
        assert requests.get(f"{url}/@a.b-c/sugarcrepe/val2017.zip", timeout=10,
                            headers={"Range": f"bytes={len(zip_data)}-"}).status_code == 416
        assert requests.get(f"{url}/@bad%20tag/sugarcrepe/swap_att.json", timeout=10).status_code == 404
        assert requests.get(f"{url}/@/sugarcrepe/swap_att.json", timeout=10).status_code == 404
    assert usage == {
        "": {"requests": 1, "bytes": len(zip_data), "files": {"sugarcrepe/val2017.zip": len(zip_data)}},
        "07_benchmarks": {"requests": 2, "bytes": len(zip_data) + len(sums),
                          "files": {"sugarcrepe/val2017.zip": len(zip_data), MANIFEST: len(sums)}},
        "a.b-c": {"requests": 5, "bytes": 100 + len(json_data),
                  "files": {"sugarcrepe/val2017.zip": 100, "sugarcrepe/swap_att.json": len(json_data)}},
    }


def test_two_tagged_clients_fetching_through_downloads_are_counted_apart(small_mirror, tmp_path, monkeypatch):
    usage: dict = {}
    sizes = {name: (small_mirror / "sugarcrepe" / name).stat().st_size for name in ("val2017.zip", "swap_att.json")}
    sums = (small_mirror / MANIFEST).stat().st_size
    with serve(small_mirror, usage=usage) as url:
        for tag, name in (("nb_a", "val2017.zip"), ("nb_b", "swap_att.json")):
            downloads._MANIFESTS.clear()
            monkeypatch.setenv(MIRROR_ENV, f"{url}/@{tag}")
            downloads.fetch(downloads.RemoteFile(name, f"https://example.invalid/{name}"), tmp_path / tag,
                            progress=False, dataset="sugarcrepe")
    assert {tag: usage[tag]["files"] for tag in usage} == {
        "nb_a": {MANIFEST: sums, "sugarcrepe/val2017.zip": sizes["val2017.zip"]},
        "nb_b": {MANIFEST: sums, "sugarcrepe/swap_att.json": sizes["swap_att.json"]},
    }
    assert usage["nb_a"]["bytes"] == sums + sizes["val2017.zip"]
    assert usage["nb_b"]["bytes"] == sums + sizes["swap_att.json"]


def test_a_client_that_hangs_up_is_counted_for_what_it_was_sent():
    import io
    import threading

    class HangsUpAfterOneBlock:
        def __init__(self):
            self.received = 0

        def write(self, block):
            if self.received:
                raise BrokenPipeError("the client left")
            self.received += len(block)

    handler = MirrorHandler.__new__(MirrorHandler)  # its copyfile alone, without a connection
    handler.usage, handler.usage_lock = {}, threading.Lock()
    handler._counted, handler._remaining = ("t", "coco/val2014.zip"), 3 << 20
    client = HangsUpAfterOneBlock()
    with pytest.raises(BrokenPipeError):
        handler.copyfile(io.BytesIO(bytes(3 << 20)), client)
    assert client.received == 1 << 20
    assert handler.usage == {"t": {"requests": 0, "bytes": 1 << 20, "files": {"coco/val2014.zip": 1 << 20}}}
