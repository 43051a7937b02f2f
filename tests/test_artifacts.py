"""The Colab fast path: a packed archive is used when published (no training), and the miniature is trained when not."""

from __future__ import annotations

import json
import shutil

import pytest

from labclip_utils.artifacts import Published, ensure, install, pack
from labclip_utils.models.miniature import MiniatureConfig
from labclip_utils.models.miniature_training import load_miniature


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A cache as a build leaves it (the tiny miniature trained) and its packed archive."""
    cache = tmp_path_factory.mktemp("built")
    assert load_miniature("seed0", config=MiniatureConfig.tiny(), cache_dir=cache, progress=False).trained_now
    archive = pack(cache, cache.parent / "out")
    return cache, archive


def test_a_published_archive_is_used_instead_of_training(built, tmp_path):
    _, archive = built
    sha = archive.with_name(archive.name + ".sha256").read_text().split()[0]
    record = Published("test", archive.as_uri(), sha)
    assert ensure(tmp_path, record, verbose=False) == "installed"
    encoder = load_miniature("seed0", config=MiniatureConfig.tiny(), cache_dir=tmp_path, progress=False)
    assert not encoder.trained_now, "the chapter loads the packed miniature"
    assert ensure(tmp_path, record, verbose=False) == "cached"


def test_without_a_published_archive_the_miniature_is_trained(tmp_path, capsys):
    assert ensure(tmp_path, Published("test", None, None)) == "not published"
    assert "trained here" in capsys.readouterr().out
    encoder = load_miniature("seed0", config=MiniatureConfig.tiny(), cache_dir=tmp_path, progress=False)
    assert encoder.trained_now


def test_a_damaged_or_foreign_archive_is_not_used(built, tmp_path):
    _, archive = built
    bad = tmp_path / archive.name
    shutil.copyfile(archive, bad)
    with open(bad, "r+b") as f:
        f.seek(100)
        f.write(b"\0" * 50)
    status = ensure(tmp_path / "cache", Published("test", bad.as_uri(), "0" * 64), verbose=False)
    assert status.startswith("unusable") and "sha256" in status
    assert not list((tmp_path / "cache").glob("miniature/*.safetensors"))
    import tarfile

    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(foreign, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "labclip-artifacts.json":
                data = json.dumps({**json.loads(data), "code": "another"}).encode()
                m.size = len(data)
            import io

            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(ValueError, match="another version of the code"):
        install(foreign, tmp_path / "cache2")
