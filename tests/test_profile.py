from pathlib import Path

import pytest
import torch

from labclip_utils import profile as prof
from labclip_utils.session import ChapterProfile, use_profile


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for var in (prof.PROFILE_ENV, prof.MODEL_ENV, prof.PRETRAINED_ENV, prof.DEVICE_ENV, prof.DATA_ENV,
                prof.SYNTHETIC_MODEL_ENV, prof.SYNTHETIC_PRETRAINED_ENV, prof.PRECISION_ENV, prof.FRACTION_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(prof.CACHE_ENV, str(tmp_path / "cache"))


def test_default_is_offline_miniature_without_downloads():
    p = prof.current_profile()
    assert (p.name, p.model, p.pretrained, p.data, p.downloads) == ("offline", "miniature", "seed0", "generated", False)
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
    assert "ViT-L-14/laion2b_s32b_b82k (real data)" in p.summary()
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
    use_profile()
    first = torch.rand(3)
    use_profile()
    second = torch.rand(3)
    assert torch.equal(first, second)
    out = capsys.readouterr().out
    assert out.count("Profile 'offline'") == 2


def test_use_profile_sets_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(prof.THREADS_ENV, "1")
    try:
        use_profile(verbose=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_paper_on_cpu_warns(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("the warning is for CPU-only machines")
    with pytest.warns(UserWarning, match="without a GPU"):
        use_profile("paper", verbose=False)


def test_paper_downloads_are_listed():
    from labclip_utils.book.environment import paper_downloads_table

    table = paper_downloads_table()
    assert {"coco", "aro", "sugarcrepe", "pug_spar", "pug_spare", "clevr"} <= set(table.index)
    assert "Google Drive" in table.loc["aro", "from"] and "manual" in table.loc["flickr30k", "from"]
    assert isinstance(prof.default_cache_dir(), Path)


def test_paper_backbones_per_experiment_precision_and_scale(monkeypatch):
    p = prof.current_profile("paper", device="cpu")
    assert p.backbone("synthetic") == ("ViT-L-14", "openai") and p.backbone("real") == ("ViT-B-32", "openai")
    assert p.precision == "fp32" and p.fraction == 1.0, "as OpenAI's clip package: fp32 on a CPU"
    assert p.label("synthetic") == "CLIP (ViT-L-14/openai)"
    assert prof.resolve_precision("auto", "cuda") == "fp16"
    monkeypatch.setenv(prof.SYNTHETIC_MODEL_ENV, "ViT-B-32")
    monkeypatch.setenv(prof.PRECISION_ENV, "fp16")
    monkeypatch.setenv(prof.FRACTION_ENV, "0.02")
    p = prof.current_profile("paper", device="cpu")
    assert p.backbone("synthetic") == ("ViT-B-32", "openai") and p.precision == "fp16"
    assert p.scaled(10_000) == 200 and p.scaled(10, minimum=3) == 3
    assert prof.current_profile("offline").fraction == 1.0 and prof.current_profile("offline").label() == \
        "CLIP (miniature)"
    for bad, message in (("2", "in \\(0, 1\\]"), ("x", "must be a number")):
        monkeypatch.setenv(prof.FRACTION_ENV, bad)
        with pytest.raises(ValueError, match=message):
            prof.current_profile("paper")
    monkeypatch.setenv(prof.FRACTION_ENV, "1")
    monkeypatch.setenv(prof.PRECISION_ENV, "int8")
    with pytest.raises(ValueError, match="unknown precision"):
        prof.current_profile("paper")
    with pytest.raises(ValueError, match="'synthetic' or 'real'"):
        prof.current_profile().backbone("coco")


def test_the_profile_line_shows_no_folder_of_the_machine_that_built_the_site(monkeypatch, tmp_path):
    monkeypatch.setenv(prof.CACHE_ENV, str(tmp_path / "cache"))
    line = prof.current_profile("offline").summary()
    assert line.endswith("cache: $LABCLIP_CACHE_DIR") and str(tmp_path) not in line
    monkeypatch.delenv(prof.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert prof.shown_path(tmp_path / "home" / ".cache" / "labclip", prof.CACHE_ENV) == "~/.cache/labclip"
    assert prof.shown_path(Path("/srv/cache"), prof.CACHE_ENV) == "/srv/cache"


def test_use_profile_returns_settings_that_load_their_encoders():
    """The settings module knows nothing of models; the chapter's profile (the session's) loads them."""
    assert not hasattr(prof.Profile, "load_encoder")
    chapter = use_profile(verbose=False)
    assert isinstance(chapter, ChapterProfile) and isinstance(chapter, prof.Profile)
    assert {f: getattr(chapter, f) for f in prof.Profile.__dataclass_fields__} == \
        {f: getattr(prof.current_profile(), f) for f in prof.Profile.__dataclass_fields__}


def test_the_former_name_of_the_fraction_is_refused_not_ignored(monkeypatch):
    monkeypatch.delenv(prof.FRACTION_ENV, raising=False)
    monkeypatch.setenv(prof.OLD_FRACTION_ENV, "0.05")
    with pytest.raises(ValueError, match="renamed \\$LABCLIP_FRACTION.*LABCLIP_FRACTION=0.05"):
        prof.current_profile("paper")


def test_a_random_init_control_does_not_depend_on_what_ran_before():
    """open_clip draws its random init from torch's global generator: the control must not change with it (a cached
    or uncached earlier cell once changed chapter 7's random-init VG-Relation control from 0.486 to 0.621)."""
    from labclip_utils.session import random_encoder

    first = random_encoder("ViT-S-32")
    torch.rand(1000)  # what an earlier, uncached cell would draw
    state = torch.random.get_rng_state()
    second = random_encoder("ViT-S-32")
    assert torch.equal(torch.random.get_rng_state(), state), "the global generator is left as it was"
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(next(iter(random_encoder("ViT-S-32", seed=1).model.state_dict().values())),
                           next(iter(first.model.state_dict().values())))
