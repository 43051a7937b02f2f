"""Hostile inputs, concurrent writers and broken downloads: each case names what is wrong, or gives the right result.

Every case of the reliability review is a regression test here (numbers, caches and saved files, downloads); the
module runs in well under a minute.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labclip_utils.cli import main as cli
from labclip_utils.io import downloads
from labclip_utils.io.files import remove_stale_temporaries, share_like_folder, temporary_path
from labclip_utils.io.mirror import serve
from labclip_utils.labclip import (
    LabclipConfig,
    LabclipMap,
    fit_labclip,
    load_labclip,
    save_labclip,
    synthetic_binding_embeddings,
)
from labclip_utils.metrics import swap_accuracy
from labclip_utils.profile import MIRROR_ENV
from labclip_utils.tasks import BenchmarkFormatError, ChoiceTask, ImageRef
from labclip_utils.triplets import write_embeddings
from tests.conftest import ROOT

D = 16


def _triplet(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return tuple(F.normalize(torch.randn(n, D, generator=g), dim=-1) for _ in range(3))


# -- numbers in -------------------------------------------------------------------------------------------------
def test_fit_refuses_what_it_cannot_fit():
    images, captions, negatives = _triplet()
    with pytest.raises(ValueError, match="train.*no rows|empty"):
        fit_labclip((images[:0], captions[:0], negatives[:0]), None, LabclipConfig(epochs=1))
    with pytest.raises(ValueError, match="hard negative"):
        fit_labclip((images, captions, torch.full_like(negatives, float("nan"))), None, LabclipConfig(epochs=1))
    bad = images.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match="train.*images.*(finite|NaN)"):
        fit_labclip((bad, captions, negatives), None, LabclipConfig(epochs=1))
    with pytest.raises(ValueError, match=r"must all be N×D, got \[\(64, 16\), \(64, 8\)"):
        fit_labclip((images, captions[:, :8], negatives), None, LabclipConfig(epochs=1))  # N×D each


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", 0), ("batch_size", -4), ("lr", float("nan"))])
def test_config_refuses_nonsense(field, value):
    with pytest.raises(ValueError, match=field):
        LabclipConfig(**{field: value})


def test_evaluation_refuses_non_finite_rows_and_skips_missing_negatives():
    images, captions, negatives = _triplet()
    negatives = negatives.clone()
    negatives[5] = float("nan")  # a scene without a hard negative: skipped, not counted as a failure
    kept = [i for i in range(len(images)) if i != 5]
    expected = swap_accuracy(images[kept], captions[kept], negatives[kept])
    assert swap_accuracy(images, captions, negatives) == expected
    broken = images.clone()
    broken[2, 1] = float("inf")
    with pytest.raises(ValueError, match="finite"):
        swap_accuracy(broken, captions, negatives)


def test_a_map_refuses_nan_other_encoders_and_wrong_widths(tmp_path):
    good = LabclipMap(D)
    save_labclip(tmp_path / "A.safetensors", good, encoder="miniature/seed0/abc")
    with pytest.raises(ValueError, match="encoder"):
        load_labclip(tmp_path / "A.safetensors", expected_dim=D, encoder_id="ViT-B-32/openai")
    loaded, _ = load_labclip(tmp_path / "A.safetensors", expected_dim=D, encoder_id="ViT-B-32/openai",
                             allow_other_encoder=True)
    assert torch.equal(loaded.A, good.A)
    with pytest.raises(ValueError, match=r"A\.safetensors: A is 16×16 but the embeddings have D=17"):
        load_labclip(tmp_path / "A.safetensors", expected_dim=D + 1)
    with pytest.raises(ValueError, match="16×16.*18"):
        good.map_texts(torch.randn(3, D + 2))
    nan_map = LabclipMap(D)
    with torch.no_grad():
        nan_map.A[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite|NaN"):
        save_labclip(tmp_path / "nan.safetensors", nan_map)
    from safetensors.torch import save_file

    save_file({"linear.weight": torch.full((D, D), float("nan")), "t": torch.zeros(1)},
              str(tmp_path / "forged.safetensors"))
    with pytest.raises(ValueError, match="forged.safetensors.*(finite|NaN)"):
        load_labclip(tmp_path / "forged.safetensors", expected_dim=D)


def test_choice_tasks_refuse_bad_answers_and_vga_boxes(tmp_path):
    refs = [ImageRef(str(tmp_path / "x.png"))]
    for answer in (2, -1):
        with pytest.raises(BenchmarkFormatError, match=f"answer {answer} is not an option index"):
            ChoiceTask("t", refs, [0], [("a cat", "a dog")], [answer], np.zeros(1), tmp_path / "t.json")
    from labclip_utils.benchmarks.aro import load_vg_attribution

    (tmp_path / "images").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "1.jpg")
    item = {"image_id": "1", "image_path": "1.jpg", "bbox_x": 0, "bbox_y": 0, "bbox_w": -3, "bbox_h": 4,
            "attributes": ["red", "blue"], "true_caption": "the red cube", "false_caption": "the blue cube"}
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps([item]))
    with pytest.raises(BenchmarkFormatError, match=r"visual_genome_attribution\.json.*item 0.*box"):
        load_vg_attribution(tmp_path)
    item["bbox_w"] = float("nan")
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps([item]))
    with pytest.raises(BenchmarkFormatError, match=r"item 0.*box"):
        load_vg_attribution(tmp_path)


def test_scene_embeddings_refuse_unknown_splits_empty_splits_and_bad_captions(tiny_encoder, tmp_path):
    from labclip_utils.scenes import make_scenes
    from labclip_utils.store import EmbeddingStore, embed_scenes, embed_texts

    store = EmbeddingStore(tmp_path)
    ds = make_scenes(20, "clevr", 2, seed=0, image_size=32)
    emb = embed_scenes(tiny_encoder, ds, store=store, progress=False)
    with pytest.raises(ValueError, match="tset"):
        emb.select("tset")
    held_out_only = ds.select("test")
    with pytest.raises(ValueError, match="no scenes|empty"):
        embed_scenes(tiny_encoder, held_out_only, split="train", store=store, progress=False)
    with pytest.raises(ValueError, match="empty"):
        embed_texts(tiny_encoder, ["a red cube", "   "], store=store, progress=False)
    with pytest.raises(TypeError, match="list"):
        embed_texts(tiny_encoder, "a red cube", store=store, progress=False)


def test_a_data_file_without_validation_rows_can_be_fitted(tmp_path, capsys):
    images, captions, negatives = _triplet(80)
    write_embeddings(tmp_path / "emb.safetensors", images, captions, negatives, np.array(["train"] * 80))
    assert cli(["fit", str(tmp_path / "emb.safetensors"), "--out", str(tmp_path / "A.safetensors"), "--epochs", "2",
                "--quiet"]) == 0
    assert "no validation rows" in capsys.readouterr().out
    assert (tmp_path / "A.safetensors").is_file()


def test_the_cli_exits_nonzero_on_bad_numbers(tmp_path, capsys):
    images, captions, negatives = _triplet(40)
    write_embeddings(tmp_path / "nan.safetensors", images, captions, torch.full_like(negatives, float("nan")),
                     np.array(["train"] * 40))
    assert cli(["fit", str(tmp_path / "nan.safetensors"), "--out", str(tmp_path / "A.safetensors"), "--quiet"]) == 2
    assert "hard negative" in capsys.readouterr().err
    assert not (tmp_path / "A.safetensors").exists()
    assert cli(["fit", str(tmp_path / "nan.safetensors"), "--out", str(tmp_path / "nan.safetensors"),
                "--quiet"]) == 2
    assert "input" in capsys.readouterr().err
    assert (tmp_path / "nan.safetensors").stat().st_size > 0  # the embeddings were not overwritten


# -- caches and saved files -------------------------------------------------------------------------------------
def test_text_cache_keys_cannot_collide(tiny_encoder, tmp_path):
    from labclip_utils.store import EmbeddingStore, embed_texts

    store = EmbeddingStore(tmp_path)
    first = embed_texts(tiny_encoder, ["a red cube", "a blue\ncube"], store=store, progress=False)
    second = embed_texts(tiny_encoder, ["a red cube\na blue", "cube"], store=store, progress=False)
    assert not torch.equal(first, second)
    assert torch.equal(second, embed_texts(tiny_encoder, ["a red cube\na blue", "cube"], progress=False,
                                           store=EmbeddingStore(tmp_path / "fresh")))


def _save_many(path: str, seed: int) -> None:
    torch.manual_seed(seed)
    for i in range(15):
        m = LabclipMap(D)
        with torch.no_grad():
            m.A.mul_(1 + seed + i)
        save_labclip(path, m, note=f"{seed}-{i}", scale=float(1 + seed + i))


def test_concurrent_writers_never_tear_a_file(tmp_path):
    path = str(tmp_path / "A.safetensors")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(path, s)) for s in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    loaded, meta = load_labclip(path, expected_dim=D)
    assert math.isclose(loaded.A[0, 0].item(), float(meta["scale"])), "values match their own metadata"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"
    assert len({temporary_path(Path(path)) for _ in range(50)}) == 50


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # a writer that has exited
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old, fresh = tmp_path / ".A.safetensors.123.deadbeef.tmp", tmp_path / f".A.safetensors.{alive.pid}.cafef00d.tmp"
        orphan, theirs = tmp_path / f".A.safetensors.{dead}.0badf00d.tmp", tmp_path / ".tmpAb12Cd"
        for f in (old, fresh, orphan, theirs):
            f.write_bytes(b"x" * 100)
        os.utime(old, (time.time() - 3 * 86400,) * 2)
        os.utime(theirs, (time.time() - 3 * 86400,) * 2)
        assert remove_stale_temporaries(tmp_path) == 3
        assert fresh.exists() and not old.exists() and not orphan.exists(), "a dead writer's file goes at once"
        assert not theirs.exists(), "safetensors' own temporaries of a killed writer too"
        assert temporary_path(tmp_path / "A.safetensors").name.split(".")[3].startswith(f"{os.getpid()}@")
    finally:
        alive.kill()
        alive.wait()


def test_cache_files_follow_the_folder_permissions(tmp_path):
    shared = tmp_path / "class-cache"
    shared.mkdir()
    shared.chmod(0o2775)
    f = shared / "entry.safetensors"
    f.write_bytes(b"x")
    f.chmod(0o600)
    share_like_folder(f)
    mode = stat.S_IMODE(f.stat().st_mode)
    assert mode & 0o044 == 0o044, oct(mode)
    save_labclip(shared / "A.safetensors", LabclipMap(D))
    assert stat.S_IMODE((shared / "A.safetensors").stat().st_mode) & 0o040


# -- downloads --------------------------------------------------------------------------------------------------
@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    (folder / "d").mkdir(parents=True)
    data = bytes(range(256)) * 400
    (folder / "d" / "file.bin").write_bytes(data)
    with serve(folder) as url:
        yield folder, url, data


def test_a_stale_part_longer_than_the_file_is_not_installed(served, tmp_path):
    folder, url, data = served
    dest = tmp_path / "file.bin"
    dest.with_name("file.bin.part").write_bytes(data + b"garbage" * 1000)
    head = __import__("requests").head(f"{url}/d/file.bin", timeout=10)
    dest.with_name("file.bin.part.json").write_text(json.dumps({"url": f"{url}/d/file.bin", "length": len(data),
                                                                "etag": head.headers["ETag"]}))
    downloads.http_download(f"{url}/d/file.bin", dest, progress=False)
    assert dest.with_name("file.bin.part").read_bytes() == data


def test_a_part_of_an_older_version_is_not_resumed(served, tmp_path):
    folder, url, data = served
    dest = tmp_path / "file.bin"
    dest.with_name("file.bin.part").write_bytes(b"old version " * 100)
    dest.with_name("file.bin.part.json").write_text(json.dumps({"url": f"{url}/d/file.bin", "length": len(data),
                                                                "etag": '"an-older-version"'}))
    downloads.http_download(f"{url}/d/file.bin", dest, progress=False)
    assert dest.with_name("file.bin.part").read_bytes() == data


def test_corrupted_state_files_are_rebuilt_with_a_warning(tmp_path):
    (tmp_path / "checksums.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="corrupted"):
        assert downloads._recorded(tmp_path) == {}
    assert (tmp_path / "checksums.json.corrupt").exists()


def test_a_truncated_archive_names_itself_and_does_not_poison_the_next_download(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "data.zip", "w") as z:
        z.writestr("data/a.txt", "a" * 5000)
    good = (src / "data.zip").read_bytes()
    (src / "data.zip").write_bytes(good[:200])
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    remote = downloads.RemoteFile("data.zip", "https://example.invalid/data.zip", extract="zip")
    root = tmp_path / "root"
    with pytest.raises(downloads.DownloadError, match=r"data\.zip: not a complete zip archive"):
        downloads.fetch(remote, root, progress=False, dataset="src")
    (src / "data.zip").write_bytes(good)  # the host (here: the mirror) serves the whole file again
    downloads._MANIFESTS.clear()
    downloads.fetch(remote, root, progress=False, dataset="src")
    assert (root / "data" / "a.txt").read_text() == "a" * 5000


def test_an_archive_never_deletes_what_it_did_not_bring(tmp_path):
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "mine.txt").write_text("keep me")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.writestr("data/new.txt", "new")
    downloads.extract(tmp_path / "a.zip", root, "zip")
    assert (root / "data" / "mine.txt").read_text() == "keep me" and (root / "data" / "new.txt").exists()
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as z:
        z.writestr("../escape.txt", "x")
    with pytest.raises(downloads.DownloadError, match="outside the dataset folder"):
        downloads.extract(tmp_path / "slip.zip", root, "zip")
    assert not (tmp_path / "escape.txt").exists()


def test_a_damaged_stored_perturbation_file_is_regenerated(tmp_path):
    from labclip_utils.benchmarks.aro import stored_order_items
    from labclip_utils.benchmarks.perturbations import scene_tagger

    path = tmp_path / "coco_karpathy_test.json"
    path.write_text(json.dumps([{"image": "val2014/x.jpg", "caption": ["a red cube and a blue sphere"] * 5}]))
    first = stored_order_items(path, scene_tagger(), seed=0)
    stored = sorted(tmp_path.glob("*perturb*")) or sorted(p for p in tmp_path.iterdir() if p != path)
    assert stored
    stored[0].write_text(stored[0].read_text()[:20])
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = stored_order_items(path, scene_tagger(), seed=0)
    assert again == first


def test_annotation_paths_stay_inside_the_dataset_and_bad_utf8_is_named(tmp_path):
    from labclip_utils.benchmarks.sugarcrepe import load_sugarcrepe

    for subset in ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att"):
        (tmp_path / f"{subset}.json").write_text(json.dumps(
            {"0": {"filename": "../../../etc/hostname", "caption": "a cat", "negative_caption": "a dog"}}))
    with pytest.raises(BenchmarkFormatError, match="leaves the dataset folder|outside"):
        load_sugarcrepe(tmp_path)
    for subset in ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att"):
        (tmp_path / f"{subset}.json").write_bytes(b'{"0": {"filename": "\xff\xfe"}}')
    with pytest.raises(BenchmarkFormatError, match=r"\.json.*UTF-8"):
        load_sugarcrepe(tmp_path)


# -- determinism ------------------------------------------------------------------------------------------------
def test_the_same_run_gives_the_same_bits_across_processes_and_threads():
    code = ("import torch; torch.set_num_threads({t});"
            "from labclip_utils.labclip import fit_labclip, LabclipConfig, synthetic_binding_embeddings;"
            "tr = synthetic_binding_embeddings(256, dim=32, seed=1);"
            "va = synthetic_binding_embeddings(64, dim=32, seed=2);"
            "r = fit_labclip(tr, va, LabclipConfig(epochs=3, batch_size=64), progress=False);"
            "print(r.map.A.double().sum().item(), r.map.A.abs().max().item())")
    outputs = {subprocess.run([sys.executable, "-c", code.format(t=t)], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout for t in (1, 2)}
    assert len(outputs) == 1, outputs
    tr, va = synthetic_binding_embeddings(256, dim=32, seed=1), synthetic_binding_embeddings(64, dim=32, seed=2)
    r = fit_labclip(tr, va, LabclipConfig(epochs=3, batch_size=64), progress=False)
    assert outputs.pop().split() == [str(r.map.A.double().sum().item()), str(r.map.A.abs().max().item())]
