"""LABCLIP at web scale: clip-retrieval folders, streamed fits equal to in-memory ones, resumed fits, DDP on gloo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from labclip_utils.benchmarks.perturbations import scene_tagger
from labclip_utils.labclip import LabclipConfig, fit_labclip, synthetic_binding_embeddings
from labclip_utils.streaming import (
    InMemoryShards,
    ShardedEmbeddings,
    StreamConfig,
    batch_plan,
    compute_negatives,
    embed_negatives,
    fit_streaming,
    shard_path,
    swap_accuracy_streaming,
    write_clip_retrieval,
)
from tests.conftest import ROOT

CONFIG = LabclipConfig(epochs=2, batch_size=32, lr=0.01)
STREAM = StreamConfig(chunk_rows=50, checkpoint_every=3)


def _folder(tmp_path, n: int = 250, shard_rows: int = 100, dim: int = 32):
    images, pos, neg = synthetic_binding_embeddings(n, dim=dim, seed=3)
    folder = write_clip_retrieval(tmp_path / "emb", images.numpy(), pos.numpy(), [f"caption {i}" for i in range(n)],
                                  shard_rows=shard_rows, dtype=np.float32)
    (folder / "neg_text_emb").mkdir()
    for k, start in enumerate(range(0, n, shard_rows)):
        np.save(shard_path(folder, "negatives", k), neg[start:start + shard_rows].numpy())
    return folder, (images, pos, neg)


def test_a_streamed_fit_equals_the_same_rows_in_memory(tmp_path):
    folder, (images, pos, neg) = _folder(tmp_path)
    data = ShardedEmbeddings.open(folder, need_negatives=True)
    assert [s.rows for s in data.shards] == [100, 100, 50] and data.dim == 32
    streamed = fit_streaming(folder, CONFIG, STREAM, progress=False)
    memory = InMemoryShards([(images[s:s + 100], pos[s:s + 100], neg[s:s + 100]) for s in (0, 100, 200)])
    in_memory = fit_streaming(memory, CONFIG, STREAM, progress=False)
    assert torch.allclose(streamed.map.A, in_memory.map.A, atol=1e-6)
    before, after = swap_accuracy_streaming(data), swap_accuracy_streaming(data, streamed.map)
    assert after > before + 0.2


def test_float16_shards_stream_as_stored_and_fit_like_their_float32_values(tmp_path):
    images, pos, neg = synthetic_binding_embeddings(120, dim=32, seed=5)
    folder = write_clip_retrieval(tmp_path / "emb", images.numpy(), pos.numpy(), [f"c{i}" for i in range(120)],
                                  shard_rows=60, dtype=np.float16)
    (folder / "neg_text_emb").mkdir()
    for k in range(2):
        np.save(shard_path(folder, "negatives", k), neg[60 * k:60 * (k + 1)].numpy().astype(np.float16))
    data = ShardedEmbeddings.open(folder, need_negatives=True)
    assert data.read(data.shards[0], 0, 10, dtype=None)[0].dtype == np.float16  # half the memory per chunk
    assert data.read(data.shards[0], 0, 10)[0].dtype == np.float32
    rounded = [x.half().float() for x in (images, pos, neg)]
    memory = InMemoryShards([tuple(x[60 * k:60 * (k + 1)] for x in rounded) for k in range(2)])
    stream = StreamConfig(chunk_rows=40, heap_threshold_mb=1)
    assert torch.allclose(fit_streaming(folder, CONFIG, stream, progress=False).map.A,
                          fit_streaming(memory, CONFIG, stream, progress=False).map.A, atol=1e-6)
    with pytest.raises(ValueError, match="heap_threshold_mb"):
        StreamConfig(heap_threshold_mb=0)


class _InMemoryOrder(InMemoryShards):
    """One shard holding every row, which each epoch's read presents in the order that makes the streamed fit's
    batches those of :func:`fit_labclip`: the streamed fit trains epoch ``e`` on rows ``order_e[b:b + B]`` of the
    chunk (:func:`batch_plan`, a NumPy permutation), ``fit_labclip`` on rows ``perm_e[b:b + B]`` of its usable rows
    (``torch.randperm`` from a generator seeded once), so row ``order_e[j]`` of the chunk read in epoch ``e`` is
    usable row ``perm_e[j]``. Rows that ``drop_unchanged`` leaves out come last (neither fit trains on them)."""

    def __init__(self, triplet, config: LabclipConfig, chunk_rows: int) -> None:
        super().__init__([triplet])
        images, pos, neg = self._data[0]
        usable = np.flatnonzero(~(neg == pos).all(axis=1)) if config.drop_unchanged else np.arange(len(images))
        unchanged = np.setdiff1d(np.arange(len(images)), usable)
        gen = torch.Generator().manual_seed(config.seed)  # fit_labclip draws one permutation per epoch
        self.arrangements = []
        for epoch in range(1, config.epochs + 1):
            perm = torch.randperm(len(usable), generator=gen).numpy()
            order = np.concatenate([idx for *_, idx in batch_plan(self, epoch, config.seed, chunk_rows,
                                                                   config.batch_size,
                                                                   kept_rows={(0, 0): len(usable)})])
            place = np.empty_like(perm)
            place[order] = perm
            self.arrangements.append(np.concatenate([usable[place], unchanged]))
        self.reads = 0

    def read(self, shard, start, stop, kinds=("images", "captions", "negatives"), dtype=None):
        if "images" not in kinds:  # drop_unchanged counts the rows it keeps: any order will do
            return super().read(shard, start, stop, kinds, dtype)
        assert (start, stop) == (0, self.rows), "one chunk holds every row"
        rows = self.arrangements[self.reads]  # the chunk is read once per epoch
        self.reads += 1
        return [a[rows] for a in super().read(shard, start, stop, kinds, dtype)]


@pytest.mark.parametrize("config", [
    LabclipConfig(epochs=3, batch_size=48, lr=0.01),
    LabclipConfig(epochs=3, batch_size=48, lr=0.01, loss="sb", seed=5, init_logit_scale=10.0),
    LabclipConfig(epochs=3, batch_size=48, lr=0.01, drop_last=True),
    LabclipConfig(epochs=3, batch_size=48, lr=0.01, drop_unchanged=True, drop_last=True, seed=2),
], ids=["hnb", "sb", "drop_last", "drop_unchanged"])
def test_the_streamed_fit_equals_fit_labclip_on_the_same_batches(config):
    """With one chunk holding every row and the batches in fit_labclip's order, the streamed fit takes the same
    steps as the in-memory one: the same A, logit scale and loss per epoch, to the last bit. 250 rows in batches
    of 48 end each epoch on a partial batch of 10 (of 5 once the five unchanged rows are left out).

    The one other difference: the streamed fit re-normalises the images (clip-retrieval's are unit norm only to
    float16 rounding), fit_labclip takes them as given. The rows here are those whose norm is 1 to the last bit,
    so that re-normalising leaves them unchanged; with rows unit norm to rounding only, A differs by rounding."""
    images, pos, neg = synthetic_binding_embeddings(400, dim=32, seed=3)
    unit = (F.normalize(images, dim=-1) == images).all(dim=1)
    images, pos, neg = (x[unit][:250] for x in (images, pos, neg))
    neg[::50] = pos[::50]  # five negatives equal to their caption, as NegCLIP's shuffle leaves some
    memory = fit_labclip((images, pos, neg), None, config, progress=False)
    source = _InMemoryOrder((images, pos, neg), config, chunk_rows=256)
    streamed = fit_streaming(source, config, StreamConfig(chunk_rows=256), progress=False)
    assert source.reads == config.epochs
    assert torch.equal(streamed.map.A, memory.map.A)
    assert torch.equal(streamed.map.logit_scale, memory.map.logit_scale)
    assert streamed.history["loss"].tolist() == memory.history["loss"].tolist()
    assert streamed.kept_epoch == memory.kept_epoch == config.epochs
    assert not torch.allclose(memory.map.A, torch.eye(32), atol=0.1), "A has moved from the identity"
    rounded = (images * (1 + 1e-7), pos, neg)  # norms off by rounding: the streamed fit's re-normalisation shows
    memory = fit_labclip(rounded, None, config, progress=False)
    streamed = fit_streaming(_InMemoryOrder(rounded, config, chunk_rows=256), config, StreamConfig(chunk_rows=256),
                             progress=False)
    assert torch.allclose(streamed.map.A, memory.map.A, rtol=0, atol=1e-6)


def test_drop_last_and_drop_unchanged_stream_and_what_cannot_is_refused(tmp_path):
    folder, (images, pos, neg) = _folder(tmp_path)  # shards of 100, 100 and 50 rows
    steps = []
    fit_streaming(folder, LabclipConfig(epochs=2, batch_size=32, drop_last=True), STREAM, progress=False,
                  on_step=steps.append)
    assert len(steps) == 2 * 5, "each 50-row chunk gives one batch of 32; its 18 left-over rows are skipped"
    changed = ~(neg == pos).all(dim=1)
    changed[::9] = False
    neg[~changed] = pos[~changed]
    for k in range(3):
        np.save(shard_path(folder, "negatives", k), neg[100 * k:100 * (k + 1)].numpy())
    config = LabclipConfig(epochs=2, batch_size=32, drop_unchanged=True)
    without = InMemoryShards([tuple(x[s:s + 100][changed[s:s + 100]] for x in (images, pos, neg))
                              for s in (0, 100, 200)])
    stream = StreamConfig(chunk_rows=100)  # one chunk per shard: the same shuffles as the shards without those rows
    assert torch.equal(fit_streaming(folder, config, stream, progress=False).map.A,
                       fit_streaming(without, LabclipConfig(epochs=2, batch_size=32), stream, progress=False).map.A)
    with pytest.raises(ValueError, match="keep='best_val' .* needs a validation set"):
        fit_streaming(folder, LabclipConfig(keep="best_val"), STREAM, progress=False)
    with pytest.raises(ValueError, match="batch_size 64 is larger than chunk_rows 50"):
        fit_streaming(folder, LabclipConfig(batch_size=64), STREAM, progress=False)
    same = InMemoryShards([(images, pos, pos)])
    with pytest.raises(ValueError, match="no row has a hard negative"):
        fit_streaming(same, config, STREAM, progress=False)

def test_a_killed_fit_resumes_to_the_same_a(tmp_path):
    folder, _ = _folder(tmp_path)
    whole = fit_streaming(folder, CONFIG, STREAM, progress=False)
    ckpt = tmp_path / "fit.ckpt"
    code = (f"import os, signal\nfrom labclip_utils.labclip import LabclipConfig\n"
            f"from labclip_utils.streaming import StreamConfig, fit_streaming\n"
            f"def die(step):\n    if step == 7: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"fit_streaming({str(folder)!r}, LabclipConfig(epochs=2, batch_size=32, lr=0.01),"
            f" StreamConfig(chunk_rows=50, checkpoint_every=3), checkpoint={str(ckpt)!r}, progress=False, on_step=die)")
    killed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL and ckpt.is_file()
    resumed = fit_streaming(folder, CONFIG, STREAM, checkpoint=ckpt, progress=False)
    assert torch.allclose(resumed.map.A, whole.map.A, atol=1e-5)
    with pytest.raises(ValueError, match="fit.ckpt: a checkpoint of another fit"):
        fit_streaming(folder, LabclipConfig(epochs=3, batch_size=32), STREAM, checkpoint=ckpt, progress=False)


UNDER_A_LIMIT = r"""
import json, resource, sys
import torch
from labclip_utils.labclip import LabclipConfig
from labclip_utils.streaming import (ShardedEmbeddings, StreamConfig, fit_streaming, memory_status_mb,
                                     reset_memory_peak)
torch.set_num_threads(1)  # on shared CPUs two threads can be ten times slower; memory does not depend on it
folder, limit_mb = sys.argv[1], float(sys.argv[2])
config, stream = LabclipConfig(epochs=1, batch_size=256), StreamConfig(chunk_rows=1024, heap_threshold_mb=1)
class WarmedUp(Exception):
    pass
def warm_up(step):
    if step == 3 * 1024 // 256:
        raise WarmedUp
try:  # thread pools, the allocator and the code paths of a step exist before the limit is set
    fit_streaming(folder, config, stream, progress=False, on_step=warm_up)
except WarmedUp:
    pass
before = memory_status_mb()
resource.setrlimit(resource.RLIMIT_DATA, (int((before["VmData"] + limit_mb) * 2**20), resource.RLIM_INFINITY))
assert reset_memory_peak()
fit_streaming(folder, config, stream, progress=False)
after = memory_status_mb()
print(json.dumps({"grew_mb": after["VmHWM"] - before["VmRSS"], "file_grew_mb": after["RssFile"] - before["RssFile"]}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's /proc/self/clear_refs")
def test_a_folder_four_times_the_memory_limit_streams_within_it(tmp_path):
    """A whole epoch adds less than ``limit_mb`` to resident memory (VmHWM: anonymous and file-backed together, so
    pages of memory maps left open count) and cannot allocate more than that (RLIMIT_DATA: an allocation past it
    fails), over a folder four times that size."""
    limit_mb, rows, dim = 24, 68_000, 128
    rng = np.random.default_rng(0)
    images, pos, neg = (rng.standard_normal((rows, dim), dtype=np.float32) for _ in range(3))
    folder = write_clip_retrieval(tmp_path / "emb", images, pos, [""] * rows, shard_rows=rows // 4, dtype=np.float32)
    (folder / "neg_text_emb").mkdir()
    for k in range(4):
        np.save(shard_path(folder, "negatives", k), neg[k * rows // 4:(k + 1) * rows // 4])
    del images, pos, neg
    data_mb = sum(f.stat().st_size for f in folder.rglob("*.npy")) / 2**20
    assert data_mb > 4 * limit_mb
    run = subprocess.run([sys.executable, "-c", UNDER_A_LIMIT, str(folder), str(limit_mb)], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    grown = json.loads(run.stdout.strip().splitlines()[-1])
    assert grown["grew_mb"] < limit_mb, (grown, f"{data_mb:.0f} MB streamed")


def _ddp_worker(rank: int, folder: str, init: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    fit = fit_streaming(folder, CONFIG, STREAM, progress=False)
    torch.save(fit.map.A, f"{out}.{rank}")
    torch.distributed.destroy_process_group()


def test_two_processes_on_gloo_train_one_a(tmp_path):
    folder, _ = _folder(tmp_path)
    torch.multiprocessing.spawn(_ddp_worker, args=(str(folder), f"file://{tmp_path / 'init'}", str(tmp_path / "A")),
                                nprocs=2, join=True)
    a0, a1 = torch.load(tmp_path / "A.0", weights_only=True), torch.load(tmp_path / "A.1", weights_only=True)
    assert torch.equal(a0, a1), "gradients are averaged, so every process holds the same A"
    data = ShardedEmbeddings.open(folder, need_negatives=True)
    from labclip_utils.labclip import map_from_tensors

    assert swap_accuracy_streaming(data, map_from_tensors(a0, torch.zeros(1))) > swap_accuracy_streaming(data) + 0.1


def test_negatives_are_computed_once_per_shard_and_embedded(tmp_path, tiny_encoder):
    from labclip_utils.scenes import make_scenes

    ds = make_scenes(30, "clevr", 2, seed=1, image_size=32)
    emb = tiny_encoder.encode_texts(ds.captions, progress=False).numpy()
    folder = write_clip_retrieval(tmp_path / "emb", emb, emb, ds.captions, shard_rows=12)
    assert compute_negatives(folder, scene_tagger(), progress=False) == 3
    first = pd.read_parquet(shard_path(folder, "negative_captions", 0))
    assert list(first.columns) == ["caption", "negative_caption"] and len(first) == 12
    assert (first["caption"] != first["negative_caption"]).any()
    assert compute_negatives(folder, scene_tagger(), progress=False) == 0, "resumable: done shards are skipped"
    shard_path(folder, "negative_captions", 1).unlink()
    compute_negatives(folder, scene_tagger(), progress=False)
    again = pd.read_parquet(shard_path(folder, "negative_captions", 0))
    assert again.equals(first), "seeded per shard: the same shuffles in any order"
    assert embed_negatives(folder, tiny_encoder, progress=False) == 3
    data = ShardedEmbeddings.open(folder, need_negatives=True)
    assert data.rows == 30


def test_broken_folders_name_the_file(tmp_path):
    folder, _ = _folder(tmp_path)
    (shard_path(folder, "images", 1)).write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=r"img_emb_1\.npy: not a readable \.npy"):
        ShardedEmbeddings.open(folder)
    folder, _ = _folder(tmp_path / "b")
    np.save(shard_path(folder, "captions", 0), np.zeros((99, 32), dtype=np.float32))
    with pytest.raises(ValueError, match=r"text_emb_0\.npy: 99 rows, but img_emb_0\.npy has 100"):
        ShardedEmbeddings.open(folder)
    folder, _ = _folder(tmp_path / "c")
    pd.DataFrame({"url": ["x"] * 100}).to_parquet(shard_path(folder, "metadata", 0))
    with pytest.raises(ValueError, match=r"metadata_0\.parquet: no 'caption' column"):
        ShardedEmbeddings.open(folder)
    folder, _ = _folder(tmp_path / "d")
    os.remove(shard_path(folder, "negatives", 2))
    with pytest.raises(FileNotFoundError, match=r"neg_text_emb_2\.npy: missing"):
        ShardedEmbeddings.open(folder, need_negatives=True)


def test_the_cli_fits_and_evaluates_a_folder(tmp_path, capsys):
    from labclip_utils.cli import main

    folder, _ = _folder(tmp_path)
    assert main(["fit", str(folder), "--out", str(tmp_path / "A.safetensors"), "--epochs", "2", "--batch-size", "32",
                 "--checkpoint", str(tmp_path / "fit.ckpt"), "--encoder-id", "synthetic", "--quiet"]) == 0
    assert main(["eval", str(folder), "--labclip", str(tmp_path / "A.safetensors"), "--encoder-id", "synthetic"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    before, after = (float(x.split("=")[1]) for x in line.split()[2:])
    assert after > before + 0.2
    assert main(["fit", str(folder), "--out", str(tmp_path / "B.safetensors"), "--keep", "best_val", "--quiet"]) == 2
    assert "--keep best_val" in capsys.readouterr().err and not (tmp_path / "B.safetensors").exists()
