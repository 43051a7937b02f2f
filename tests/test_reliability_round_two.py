"""Reliability, round two: a checkpoint never hands one dataset's A to another, archives are read to their last
checksum, readers never mix two files, and no command ends in a traceback.

Each case of the second hostile-input review is a regression test here; the module runs in well under a minute.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from labclip_utils.cli import main as cli
from labclip_utils.io import downloads
from labclip_utils.labclip import LabclipConfig, LabclipMap, load_labclip, save_labclip, synthetic_binding_embeddings
from labclip_utils.profile import MIRROR_ENV
from labclip_utils.streaming import StreamConfig, fit_streaming, shard_path, write_clip_retrieval
from labclip_utils.tasks import BenchmarkFormatError, ChoiceTask, ImageRef
from tests.conftest import ROOT

CONFIG = LabclipConfig(epochs=1, batch_size=32, lr=0.01)
STREAM = StreamConfig(chunk_rows=50, checkpoint_every=3)


def _folder(path: Path, seed: int = 3, n: int = 120, dtype=np.float32) -> Path:
    images, pos, neg = synthetic_binding_embeddings(n, dim=16, code_dim=4, seed=seed)
    folder = write_clip_retrieval(path, images.numpy(), pos.numpy(), [f"caption {i}" for i in range(n)],
                                  shard_rows=60, dtype=dtype)
    (folder / "neg_text_emb").mkdir()
    for k in range(-(-n // 60)):
        np.save(shard_path(folder, "negatives", k), neg[60 * k:60 * (k + 1)].numpy().astype(dtype))
    return folder


# -- 1. a checkpoint belongs to one dataset -----------------------------------------------------------------------
def test_a_finished_checkpoint_of_another_folder_of_the_same_shape_is_refused_by_name(tmp_path, capsys):
    first, second = _folder(tmp_path / "first", seed=3), _folder(tmp_path / "second", seed=4)
    ckpt = tmp_path / "c.ckpt"
    fit_streaming(first, CONFIG, STREAM, checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match=r"c\.ckpt: a checkpoint of a fit on other data \(img_emb/img_emb_0\.npy"):
        fit_streaming(second, CONFIG, STREAM, checkpoint=ckpt, progress=False)
    out = tmp_path / "A.safetensors"
    assert cli(["fit", str(second), "--out", str(out), "--epochs", "1", "--batch-size", "32", "--chunk-rows", "50",
                "--checkpoint", str(ckpt), "--quiet"]) == 2
    assert "other data" in capsys.readouterr().err and not out.exists()
    # the same folder resumes (here: is already finished) as before
    assert cli(["fit", str(first), "--out", str(out), "--epochs", "1", "--batch-size", "32", "--chunk-rows", "50",
                "--checkpoint", str(ckpt), "--quiet"]) == 0


def test_a_checkpoint_that_is_a_shard_unreadable_or_nan_is_refused(tmp_path, capsys):
    folder = _folder(tmp_path / "emb")
    shard = shard_path(folder, "images", 0)
    before = shard.read_bytes()
    args = ["fit", str(folder), "--out", str(tmp_path / "A.safetensors"), "--quiet", "--epochs", "1", "--chunk-rows",
            "50", "--batch-size", "32"]  # a batch fits in a chunk
    assert cli([*args, "--checkpoint", str(shard)]) == 2
    assert "--checkpoint" in capsys.readouterr().err and shard.read_bytes() == before
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    assert cli([*args, "--checkpoint", str(junk)]) == 2
    assert "junk.ckpt: not a readable checkpoint" in capsys.readouterr().err
    ckpt = tmp_path / "fit.ckpt"
    fit_streaming(folder, LabclipConfig(epochs=1, batch_size=32), STREAM, checkpoint=ckpt, progress=False)
    state = torch.load(ckpt, weights_only=True)
    state["map"]["linear.weight"][0, 0] = float("nan")
    torch.save(state, ckpt)
    assert cli([*args, "--checkpoint", str(ckpt)]) == 2
    assert "fit.ckpt: the checkpoint's A or t is NaN" in capsys.readouterr().err


def test_nan_rows_in_float16_shards_name_the_shard_and_row(tmp_path, capsys):
    folder = _folder(tmp_path / "emb", dtype=np.float16)
    path = shard_path(folder, "captions", 1)
    values = np.load(path)
    values[7, 3] = np.nan
    np.save(path, values)
    assert cli(["fit", str(folder), "--out", str(tmp_path / "A.safetensors"), "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "text_emb_1.npy: row 7 has NaN" in err and "smaller lr" not in err


# -- 2. --out is never an input ---------------------------------------------------------------------------------
def test_out_onto_an_input_shard_is_refused_even_through_a_link(tmp_path, capsys):
    folder = _folder(tmp_path / "emb")
    shard = shard_path(folder, "images", 0)
    before = shard.read_bytes()
    (tmp_path / "link").symlink_to(folder / "img_emb")
    for out in (shard, tmp_path / "link" / "img_emb_0.npy", folder / "neg_text_emb" / "A.safetensors"):
        assert cli(["fit", str(folder), "--out", str(out), "--epochs", "1", "--quiet"]) == 2
        assert "--out" in capsys.readouterr().err
    assert shard.read_bytes() == before
    assert not (folder / "neg_text_emb" / "A.safetensors").exists()


# -- 3. archives are read to their last checksum ------------------------------------------------------------------
def _tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def test_a_tar_gz_with_one_flipped_byte_is_not_unpacked_nor_its_hash_recorded(tmp_path, monkeypatch):
    src = tmp_path / "mirror" / "ds"
    src.mkdir(parents=True)
    archive = _tar_gz(src / "data.tar.gz", {"data/a.txt": os.urandom(3000)})
    raw = bytearray(archive.read_bytes())
    raw[-6] ^= 0x01  # a byte of the gzip trailer's CRC-32: every member still reads back "fine"
    archive.write_bytes(bytes(raw))
    with pytest.raises(downloads.DownloadError, match=r"data\.tar\.gz: not a complete tar archive.*CRC"):
        downloads.check_archive(archive, "tar")
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    downloads._MANIFESTS.clear()
    root = tmp_path / "root"
    remote = downloads.RemoteFile("data.tar.gz", "https://example.invalid/data.tar.gz", extract="tar")
    with pytest.raises(downloads.DownloadError, match="not a complete tar archive"):
        downloads.fetch(remote, root, progress=False, dataset="ds")
    assert not (root / "data").exists() and "data.tar.gz" not in downloads._recorded(root)


def test_artifacts_install_without_sha256_checks_every_entry(tmp_path, capsys):
    from labclip_utils.artifacts import MANIFEST, code_version
    from labclip_utils.cache import cached_tensors

    cache = tmp_path / "cache"
    cached_tensors(cache, "miniature", {"k": 1}, lambda: {"w": torch.arange(64.0)})
    entry = next((cache / "miniature").glob("*.safetensors"))
    data = bytearray(entry.read_bytes())
    data[-4:] = b"\x00\x00\x80\x7f"  # the last weight flipped to inf: a valid file whose checksum fails
    name = f"miniature/{entry.name}"
    manifest = {"version": "t", "code": code_version(), "entries": [name]}
    archive = _tar_gz(tmp_path / "a.tar.gz", {MANIFEST: json.dumps(manifest).encode(), name: bytes(data)})
    target = tmp_path / "target"
    assert cli(["artifacts", "install", str(archive), str(target)]) == 2
    assert f"{entry.name}: not a usable cache entry" in capsys.readouterr().err
    assert not list(target.glob("miniature/*.safetensors"))


# -- 4. one read per file -----------------------------------------------------------------------------------------
def test_a_reader_never_pairs_one_files_metadata_with_anothers_weights(tmp_path, monkeypatch):
    path, other = tmp_path / "A.safetensors", tmp_path / "B.safetensors"
    for target, scale in ((path, 1.0), (other, 2.0)):
        m = LabclipMap(4)
        with torch.no_grad():
            m.A.mul_(scale)
        save_labclip(target, m, scale=scale)
    swapped = []

    def another_writer_replaces_the_file() -> None:
        if not swapped:
            swapped.append(True)
            os.replace(other, path)

    real_open, real_from_file = builtins.open, torch.UntypedStorage.from_file

    def opening(file, *args, **kwargs):  # the file is replaced right after the reader first opened it
        handle = real_open(file, *args, **kwargs)
        if str(file) == str(path):
            another_writer_replaces_the_file()
        return handle

    def from_file(*args, **kwargs):  # safetensors' second opening, by path (the race window of safe_open)
        another_writer_replaces_the_file()
        return real_from_file(*args, **kwargs)

    monkeypatch.setattr(builtins, "open", opening)
    monkeypatch.setattr(torch.UntypedStorage, "from_file", from_file)
    loaded, meta = load_labclip(path)
    monkeypatch.undo()
    assert swapped, "the file was replaced while it was being read"
    assert loaded.A[0, 0].item() == float(meta["scale"]), "weights and metadata come from the same file"


# -- 5. VG-Attribution crops stay inside their image ----------------------------------------------------------------
def test_a_vg_attribution_box_outside_its_image_is_refused_at_load(tmp_path):
    from PIL import Image

    from labclip_utils.benchmarks.aro import load_vg_attribution

    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 6)).save(tmp_path / "images" / "1.jpg")
    item = {"image_id": "1", "image_path": "1.jpg", "bbox_x": 2, "bbox_y": 1, "bbox_w": 4, "bbox_h": 4,
            "attributes": ["red", "blue"], "true_caption": "the red cube", "false_caption": "the blue cube"}
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps([item, {**item, "bbox_x": 20}]))
    with pytest.raises(BenchmarkFormatError, match=r"attribution\.json \(item 1\): crop box .* outside the 8×6 image"):
        load_vg_attribution(tmp_path)
    (tmp_path / "visual_genome_attribution.json").write_text(json.dumps([item]))
    assert len(load_vg_attribution(tmp_path).options) == 1


# -- no command ends in a traceback ---------------------------------------------------------------------------------
def _bad_inputs(tmp_path: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(what is wrong, argv, environment) for every subcommand."""
    from safetensors.torch import save_file

    from labclip_utils.artifacts import MANIFEST, code_version
    from labclip_utils.triplets import write_embeddings

    folder = _folder(tmp_path / "emb")
    stray = _folder(tmp_path / "stray")
    np.save(stray / "img_emb" / "img_emb_backup.npy", np.zeros((2, 16), np.float32))
    orphan = _folder(tmp_path / "orphan")
    np.save(shard_path(orphan, "captions", 5), np.zeros((2, 16), np.float32))
    ints = _folder(tmp_path / "ints")
    np.save(shard_path(ints, "images", 0), np.ones((60, 16), np.int32))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    emb = write_embeddings(tmp_path / "emb.safetensors", *synthetic_binding_embeddings(40, dim=16, code_dim=4))
    int_emb = tmp_path / "int.safetensors"
    save_file({k: torch.ones(4, 16, dtype=torch.int64) for k in ("images", "captions", "negatives")}, str(int_emb))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"junk")
    manifest = json.dumps({"version": "t", "code": code_version(), "entries": ["miniature/x.safetensors"]}).encode()
    good = _tar_gz(tmp_path / "good.tar.gz", {MANIFEST: manifest, "miniature/x.safetensors": os.urandom(5000)})
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[:300])
    no_entries = _tar_gz(tmp_path / "no-entries.tar.gz", {MANIFEST: json.dumps({"code": code_version()}).encode()})
    escape = _tar_gz(tmp_path / "escape.tar.gz", {MANIFEST: manifest, "../escape.txt": b"x"})
    absolute = _tar_gz(tmp_path / "absolute.tar.gz", {MANIFEST: manifest, "/tmp/absolute.txt": b"x"})
    linked = tmp_path / "link.tar.gz"
    with tarfile.open(linked, "w:gz") as t:
        info = tarfile.TarInfo("miniature/x.safetensors")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(info)
    out = str(tmp_path / "A.safetensors")
    fit = ["fit", str(folder), "--quiet", "--epochs", "1"]
    return [
        ("--out under a file", ["fit", str(emb), "--out", str(a_file / "A.safetensors")], {}),
        ("--out onto a folder", ["fit", str(emb), "--out", str(tmp_path)], {}),
        ("--out onto its input", ["fit", str(emb), "--out", str(emb)], {}),
        ("--checkpoint a shard", [*fit, "--out", out, "--checkpoint", str(shard_path(folder, "images", 0))], {}),
        ("--checkpoint unreadable", [*fit, "--out", out, "--checkpoint", str(junk)], {}),
        ("--checkpoint a folder", [*fit, "--out", out, "--checkpoint", str(tmp_path)], {}),
        ("a stray img_emb_backup.npy", ["fit", str(stray), "--out", out], {}),
        ("a text shard without images", ["fit", str(orphan), "--out", out], {}),
        ("int32 shards", ["fit", str(ints), "--out", out], {}),
        ("int64 embeddings", ["fit", str(int_emb), "--out", out], {}),
        ("no such embeddings", ["fit", str(tmp_path / "none.safetensors"), "--out", out], {}),
        ("--epochs 0", ["fit", str(emb), "--out", out, "--epochs", "0"], {}),
        ("--lr not a number", ["fit", str(emb), "--out", out, "--lr", "fast"], {}),
        ("eval without the map", ["eval", str(emb), "--labclip", str(tmp_path / "none.safetensors")], {}),
        ("eval of a folder with a stray shard", ["eval", str(stray), "--labclip", out], {}),
        ("embed --n 0", ["embed", "--n", "0", "--out", out], {}),
        ("embed an unknown model", ["embed", "--encoder", "ViT-Q-99", "--n", "4", "--out", out], {}),
        ("embed --out onto a folder", ["embed", "--n", "4", "--out", str(tmp_path)], {}),
        ("an invalid $LABCLIP_DEVICE", ["embed", "--n", "4", "--out", out], {"LABCLIP_DEVICE": "gpu9"}),
        ("a cache folder that is a file", ["embed", "--n", "4", "--out", out], {"LABCLIP_CACHE_DIR": str(a_file)}),
        ("negatives of no folder", ["negatives", str(tmp_path / "nowhere")], {}),
        ("downloads reset of no folder", ["downloads", "reset", str(tmp_path / "nowhere"), "x.zip"], {}),
        ("install a truncated archive", ["artifacts", "install", str(truncated), str(tmp_path / "c")], {}),
        ("install a manifest without entries", ["artifacts", "install", str(no_entries), str(tmp_path / "c")], {}),
        ("install a ../ member", ["artifacts", "install", str(escape), str(tmp_path / "c")], {}),
        ("install an absolute member", ["artifacts", "install", str(absolute), str(tmp_path / "c")], {}),
        ("install a link member", ["artifacts", "install", str(linked), str(tmp_path / "c")], {}),
        ("install a folder", ["artifacts", "install", str(tmp_path), str(tmp_path / "c")], {}),
        ("install into a file", ["artifacts", "install", str(good), str(a_file)], {}),
        ("install without sha256 match", ["artifacts", "install", str(good), str(tmp_path / "c"), "--sha256", "0"],
         {}),
        ("pack into a file", ["artifacts", "pack", str(tmp_path), str(a_file)], {}),
        ("pack an empty cache", ["artifacts", "pack", str(tmp_path / "nowhere"), str(tmp_path / "packed")], {}),
        ("mirror manifest of no folder", ["mirror", "manifest", str(tmp_path / "nowhere")], {}),
        ("mirror serve of no folder", ["mirror", "serve", str(tmp_path / "nowhere"), "--port", "0"], {}),
        ("mirror serve on no port", ["mirror", "serve", str(tmp_path), "--port", "99999"], {}),
        ("no subcommand", [], {}),
    ]


def test_every_command_fails_on_bad_input_with_exit_2_and_one_line(tmp_path, capsys, monkeypatch):
    problems = []
    for what, argv, env in _bad_inputs(tmp_path):
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            try:
                code = cli(argv)
            except SystemExit as stop:  # argparse
                code = stop.code
            except Exception as err:  # noqa: BLE001 (the failure this test looks for)
                code = f"raised {type(err).__name__}: {err}"
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        if code != 2 or len(lines) != 1 or "Traceback" in err or not lines[0].startswith("error: "):
            problems.append(f"{what}: exit {code}, stderr {err!r}")
    assert not problems, "\n".join(problems)
    assert not Path("/tmp/absolute.txt").exists() and not (tmp_path / "escape.txt").exists()


def test_the_module_entry_point_ends_in_one_line_too(tmp_path):
    run = subprocess.run([sys.executable, "-m", "labclip_utils", "embed", "--n", "0", "--out", str(tmp_path / "e")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2 and run.stderr.strip() == "error: --n must be positive, got 0", run.stderr


# -- silently accepted no more ------------------------------------------------------------------------------------
def test_doubtful_inputs_are_refused_naming_the_item(tmp_path, monkeypatch):
    from labclip_utils.book.claims import claim
    from labclip_utils.session import use_profile
    from labclip_utils.streaming import compute_negatives

    with pytest.raises(BenchmarkFormatError, match=r"item 1\): answer 0\.5 is not a whole option index"):
        ChoiceTask("t", [ImageRef(str(tmp_path / "x.png"))], [0, 0], [("a", "b"), ("c", "d")], [1, 0.5], np.zeros(2),
                   tmp_path / "t.json")
    big = np.ones((4, 16), np.float32)
    big[2, 5] = 1e6
    with pytest.raises(ValueError, match=r"img_emb_0\.npy: row 2 overflows float16"):
        write_clip_retrieval(tmp_path / "big", big, np.ones((4, 16)), ["a"] * 4)
    folder = write_clip_retrieval(tmp_path / "null", np.ones((3, 16)), np.ones((3, 16)), ["a", None, "c"])
    with pytest.raises(ValueError, match=r"metadata_0\.parquet: row 1 has no 'caption' \(null"):
        compute_negatives(folder, lambda text: [(w, "NOUN") for w in text.split()], progress=False)
    with zipfile.ZipFile(tmp_path / "win.zip", "w") as z:
        z.writestr("data\\a.txt", "x")
    with pytest.raises(downloads.DownloadError, match=r"win\.zip: member 'data\\\\a\.txt' uses backslashes"):
        downloads.extract(tmp_path / "win.zip", tmp_path / "root", "zip")
    with pytest.raises(TypeError, match="claim 'it works': the value must be a number, got None"):
        claim("it works", None, above=0.5)
    monkeypatch.setenv("LABCLIP_NUM_THREADS", "four")
    with pytest.raises(ValueError, match=r"\$LABCLIP_NUM_THREADS must be a positive whole number"):
        use_profile(verbose=False)


def test_skipped_clevr_rows_name_their_images(tmp_path):
    from PIL import Image

    from labclip_utils.scenes.formats import read_clevr

    (tmp_path / "images_2obj").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images_2obj" / "a.png")
    (tmp_path / "output_2obj.csv").write_text("a.png,cube,red,sphere,blue\ngone.png,cube,red,sphere,blue\n")
    with pytest.warns(UserWarning, match=r"skipped 1 CSV rows whose image file is missing: images_2obj/gone\.png "
                                         r"\(output_2obj\.csv line 2\)"):
        assert len(read_clevr(tmp_path)) == 1


# -- a cache a class can share; files another user cannot write or read ------------------------------------------------
def _as_user(uid: int, gid: int, work) -> str:
    """Run ``work()`` in a forked child as ``uid``/``gid`` (umask 022); returns '' or the child's error."""
    import encodings.ascii  # noqa: F401 (the child may not be allowed to read a root-only Python install)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        message = ""
        try:
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
            os.umask(0o022)
            work()
        except BaseException as err:  # noqa: BLE001 (reported to the parent)
            message = f"{type(err).__name__}: {err}"
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    return message


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "fork"),
                                reason="two users need root (os.setuid in a forked child); not root here")


@needs_root
@pytest.mark.parametrize("sticky", [False, True], ids=["chmod 2775", "chmod 3775 (sticky)"])
def test_two_users_of_one_group_share_a_cache(tmp_path_factory, sticky):
    import tempfile
    import warnings

    from labclip_utils.cache import cached_tensors, entry_path

    shared = Path(tempfile.mkdtemp(prefix="labclip-class-cache-"))
    try:
        os.chown(shared, 0, 65534)
        shared.chmod(0o3775 if sticky else 0o2775)
        first, second = 65532, 65533
        key = {"what": "shared"}
        path = entry_path(shared, "embeddings", key)

        def compute(value: float):
            return lambda: {"x": torch.full((4,), value)}

        def first_user() -> None:
            cached_tensors(shared, "embeddings", key, compute(1.0))

        def second_user() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # "ignored and recomputed"
                tensors, hit = cached_tensors(shared, "embeddings", key, compute(2.0))
            assert not hit and tensors["x"][0] == 2.0
            cached_tensors(shared, "embeddings", {"what": "another"}, compute(3.0))

        assert _as_user(first, 65534, first_user) == ""
        if sticky:
            path.parent.chmod(0o3775)
        path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")  # a stale (corrupted) entry of the first user
        assert _as_user(second, 65534, second_user) == ""
        tensors, hit = cached_tensors(shared, "embeddings", key, compute(9.0))
        assert hit and tensors["x"][0] == 2.0, "the second user's entry replaced the stale one"
        for f in (path, Path(str(path) + ".lock"), path.parent):
            assert f.stat().st_mode & 0o020, f"{f} is group-writable"
    finally:
        import shutil

        shutil.rmtree(shared, ignore_errors=True)


def test_unwritable_out_and_unreadable_benchmark_files_are_named(tmp_path_factory):
    import tempfile

    from labclip_utils.benchmarks.base import read_json

    place = Path(tempfile.mkdtemp(prefix="labclip-perm-"))
    try:
        place.chmod(0o755)
        locked = place / "locked"
        locked.mkdir(mode=0o700)
        (locked / "x.json").write_text("[]")
        emb = place / "emb.safetensors"
        from labclip_utils.triplets import write_embeddings

        write_embeddings(emb, *synthetic_binding_embeddings(20, dim=8, code_dim=2))
        emb.chmod(0o644)

        def work() -> None:
            with pytest.raises(BenchmarkFormatError, match=r"x\.json: permission denied"):
                read_json(locked / "x.json")
            err = io.StringIO()
            sys.stderr, saved = err, sys.stderr
            try:
                code = cli(["fit", str(emb), "--out", str(place / "A.safetensors"), "--epochs", "1", "--quiet"])
            finally:
                sys.stderr = saved
            assert code == 2 and "--out" in err.getvalue() and "permission denied" in err.getvalue(), err.getvalue()

        if os.geteuid() == 0:
            assert _as_user(65534, 65534, work) == ""
        else:
            locked.chmod(0o000)
            place.chmod(0o555)
            work()
    finally:
        import shutil

        for p in (place, place / "locked"):
            p.chmod(0o755)
        shutil.rmtree(place, ignore_errors=True)
