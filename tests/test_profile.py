from pathlib import Path

import pytest
import torch

from labclip_utils import profile as prof


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in (prof.PROFILE_ENV, prof.MODEL_ENV, prof.PRETRAINED_ENV, prof.DEVICE_ENV, prof.DATA_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(prof.CACHE_ENV, str(tmp_path / "cache"))


def test_default_is_offline_miniature_without_downloads():
    p = prof.current_profile()
    assert (p.name, p.model, p.pretrained, p.data, p.downloads) == ("offline", "miniature", None, "generated", False)
    assert p.is_offline


def test_environment_variable_selects_paper_and_argument_wins(monkeypatch):
    monkeypatch.setenv(prof.PROFILE_ENV, "paper")
    p = prof.current_profile()
    assert (p.name, p.model, p.pretrained, p.downloads) == ("paper", "ViT-B-32", "openai", True)
    assert prof.current_profile("offline").name == "offline"


def test_paper_model_can_be_overridden(monkeypatch):
    monkeypatch.setenv(prof.MODEL_ENV, "ViT-L-14")
    monkeypatch.setenv(prof.PRETRAINED_ENV, "laion2b_s32b_b82k")
    p = prof.current_profile("paper")
    assert (p.model, p.pretrained) == ("ViT-L-14", "laion2b_s32b_b82k")
    assert "ViT-L-14/laion2b_s32b_b82k" in p.summary()
    # The override never leaks into the offline profile.
    assert prof.current_profile("offline").model == "miniature"


def test_unknown_profile_names_its_source(monkeypatch):
    with pytest.raises(ValueError, match="unknown profile 'gpu'.*argument"):
        prof.current_profile("gpu")
    monkeypatch.setenv(prof.PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match=r"'fast'.*\$LABCLIP_PROFILE"):
        prof.current_profile()


def test_folders_follow_environment(monkeypatch, tmp_path):
    p = prof.current_profile()
    assert p.cache_dir == (tmp_path / "cache").resolve()
    assert p.data_dir == p.cache_dir / "data"
    monkeypatch.setenv(prof.DATA_ENV, str(tmp_path / "datasets"))
    assert prof.current_profile().data_dir == (tmp_path / "datasets").resolve()


def test_default_cache_dir_without_override(monkeypatch, tmp_path):
    monkeypatch.delenv(prof.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prof.default_cache_dir() == (tmp_path / "xdg" / "labclip").resolve()


def test_device_resolution():
    assert prof.resolve_device("cpu") == "cpu"
    assert prof.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        prof.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            prof.resolve_device("cuda")


def test_use_profile_prints_and_seeds(capsys):
    prof.use_profile()
    first = torch.rand(3)
    prof.use_profile()
    second = torch.rand(3)
    assert torch.equal(first, second)
    out = capsys.readouterr().out
    assert out.count("Profile 'offline'") == 2


def test_use_profile_sets_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(prof.THREADS_ENV, "1")
    try:
        prof.use_profile(verbose=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_paper_on_cpu_warns(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("the warning is for CPU-only machines")
    with pytest.warns(UserWarning, match="without a GPU"):
        prof.use_profile("paper", verbose=False)


def test_paper_downloads_are_listed():
    items = [d.item for d in prof.PAPER_DOWNLOADS]
    assert any("ViT-B-32" in i for i in items)
    assert all(isinstance(d.size, str) and d.size for d in prof.PAPER_DOWNLOADS)
    assert isinstance(prof.default_cache_dir(), Path)
