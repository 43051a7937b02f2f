"""Fitting A at scale: streamed from clip-retrieval shards versus the same rows in memory, and a resumed fit.

Data: synthetic unit-norm embeddings with linearly recoverable binding (``synthetic_binding_embeddings``), written
in clip-retrieval's layout as float16 shards of 250,000 rows (``--rows``, default 2,000,000 × 512: 6 GB on disk).

- **streaming**: ``fit_streaming`` on the folder (one 32,768-row chunk in memory, ``heap_threshold_mb=1``
  so freed batch buffers leave the heap), in a fresh process, twice: with the shards in the page cache (read
  through first; as when the folder was just written) and with them dropped from it (``fsync`` then
  ``posix_fadvise(DONTNEED)``: no privileges needed); how much of the shards is cached is measured (``mincore``)
  before each. Each run reports its peak resident memory from ``ru_maxrss`` and, sampled from ``/proc/self/status``,
  the peaks of its anonymous (``RssAnon``) and file-backed (``RssFile``) parts. The folder is written by a child
  process: Linux hands the peak memory of a process on to the ``ru_maxrss`` of every program it starts, so a
  launcher that had held a shard's worth of float32 would inflate the streamed fit's figure (4.7 GB instead of
  1.4 GB, the cause of issue 30);
- **in memory**: every shard loaded as float32 first (what ``fit_labclip`` needs: 12 GB at 2M rows), then the same
  trainer over the same batches, in another fresh process;
- **resumed**: a fit on the first shard killed (SIGKILL) part-way and started again from its checkpoint, against
  the same fit uninterrupted.

Both throughput runs take ``--steps`` batches of 4,096 (the paper's CC3M batch).

    python speed/labclip_scale.py [--rows 2000000] [--steps 60] [--folder /tmp/labclip-scale]

Last line: ``rows= peak_rss_mb= peak_anon_mb= peak_file_mb= streaming_rows_per_s= in_memory_rows_per_s= ratio=
resumed_max_abs_diff=``, each streaming figure the worse of the warm and cold runs.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARD_ROWS = 250_000
DIM = 512
BATCH = 4096


def write_folder(folder: Path, rows: int) -> None:
    """Synthetic embeddings in clip-retrieval's layout, written shard by shard (never all in memory)."""
    from labclip_utils.labclip import synthetic_binding_embeddings
    from labclip_utils.streaming import shard_path, write_clip_retrieval

    if (folder / "done.json").is_file() and json.loads((folder / "done.json").read_text())["rows"] == rows:
        return
    shutil.rmtree(folder, ignore_errors=True)
    for k, start in enumerate(range(0, rows, SHARD_ROWS)):
        n = min(SHARD_ROWS, rows - start)
        images, pos, neg = synthetic_binding_embeddings(n, dim=DIM, seed=100 + k)
        write_clip_retrieval(folder / f"part{k}", images.numpy(), pos.numpy(), [""] * n, shard_rows=n)
        for kind in ("images", "captions", "metadata"):
            target = shard_path(folder, kind, k)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(shard_path(folder / f"part{k}", kind, 0), target)
        target = shard_path(folder, "negatives", k)
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, neg.numpy().astype(np.float16))
        shutil.rmtree(folder / f"part{k}")
        print(f"wrote shard {k} ({start + n:,} rows)", flush=True)
    (folder / "done.json").write_text(json.dumps({"rows": rows}))


def shard_files(folder: Path) -> list[Path]:
    """The ``.npy`` shards of a folder (what the streamed fit reads)."""
    return sorted(folder.glob("*/*.npy"))


def cached_fraction(paths: list[Path]) -> float | None:
    """The share of the files' pages in the page cache (``mincore`` on a mapping that is never read); None where
    the C library has no ``mincore``."""
    try:
        mincore = ctypes.CDLL(None, use_errno=True).mincore
    except (OSError, AttributeError):
        return None
    page, cached, total = mmap.PAGESIZE, 0, 0
    for path in paths:
        size = path.stat().st_size
        with open(path, "rb") as f, mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mapping:
            pages = -(-size // page)
            vector = (ctypes.c_ubyte * pages)()
            start = (ctypes.c_char * size).from_buffer(mapping)
            failed = mincore(ctypes.byref(start), ctypes.c_size_t(size), vector)
            del start  # the mapping closes only once nothing points into it
            if failed:
                return None
            cached, total = cached + sum(v & 1 for v in vector), total + pages
    return cached / max(total, 1)


def warm_page_cache(paths: list[Path]) -> None:
    """Read the files through once, into one reused buffer (pages already cached cost a copy)."""
    buffer = bytearray(16 << 20)
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def drop_page_cache(paths: list[Path]) -> None:
    """Drop the files from the page cache without privileges: ``fsync`` (dirty pages cannot be dropped), then
    ``posix_fadvise(POSIX_FADV_DONTNEED)``; nothing where the platform has no ``posix_fadvise``."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


WORKER = r"""
import json, resource, sys, time
import numpy as np
from labclip_utils.labclip import LabclipConfig
from labclip_utils.streaming import (InMemoryShards, MemorySampler, ShardedEmbeddings, StreamConfig, fit_streaming,
                                     memory_status_mb)
mode, folder, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = ShardedEmbeddings.open(folder, need_negatives=True)
if mode == "memory":
    data = InMemoryShards([data.read(s, 0, s.rows) for s in data.shards])
class Stop(Exception):
    pass
times = []
def on_step(k):
    times.append(time.perf_counter())
    if len(times) > steps:
        raise Stop
try:
    with MemorySampler() as sampler:
        fit_streaming(data, LabclipConfig(epochs=1, batch_size=4096, lr=1e-3), StreamConfig(heap_threshold_mb=1),
                      progress=False, on_step=on_step)
except Stop:
    pass
rate = 4096 * (len(times) - 1) / (times[-1] - times[0])  # steady state: from the first step to the last
print(json.dumps({"rows_per_s": rate, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vm_hwm_mb": memory_status_mb().get("VmHWM"), "peak_anon_mb": sampler.peaks["RssAnon"],
                  "peak_file_mb": sampler.peaks["RssFile"]}))
"""

RESUME = r"""
import os, signal, sys
from labclip_utils.labclip import LabclipConfig
from labclip_utils.streaming import ShardedEmbeddings, StreamConfig, fit_streaming
folder, ckpt, kill_at, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = ShardedEmbeddings.open(folder, need_negatives=True)
data.shards = data.shards[:1]
def on_step(k):
    if k == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
fit = fit_streaming(data, LabclipConfig(epochs=2, batch_size=4096, lr=1e-3), StreamConfig(checkpoint_every=10),
                    checkpoint=ckpt or None, progress=False, on_step=on_step if kill_at else None)
import torch; torch.save(fit.map.A.detach().clone(), out)
"""


def run_worker(mode: str, folder: Path, steps: int) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, mode, str(folder), str(steps)], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def resumed_difference(folder: Path, tmp: Path) -> float:
    import torch

    def run(ckpt: str, kill_at: int, out: Path) -> int:
        return subprocess.run([sys.executable, "-c", RESUME, str(folder), ckpt, str(kill_at), str(out)],
                              cwd=ROOT).returncode

    run("", 0, tmp / "whole.pt")
    assert run(str(tmp / "fit.ckpt"), 25, tmp / "x.pt") == -signal.SIGKILL
    run(str(tmp / "fit.ckpt"), 0, tmp / "resumed.pt")
    whole, resumed = (torch.load(tmp / f, weights_only=True) for f in ("whole.pt", "resumed.pt"))
    return float((whole - resumed).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "labclip-scale")
    parser.add_argument("--write-only", action="store_true", help="write the folder and stop (run in a child "
                        "process by the benchmark, so that its own peak memory stays small)")
    args = parser.parse_args()
    if args.write_only:
        write_folder(args.folder, args.rows)
        return
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--folder", str(args.folder), "--write-only"],
                   check=True, cwd=ROOT)
    print(f"folder ready in {time.perf_counter() - start:.0f} s", flush=True)
    files = shard_files(args.folder)
    runs = {}
    for cache, prepare in (("warm", warm_page_cache), ("cold", drop_page_cache)):
        prepare(files)
        cached = cached_fraction(files)
        runs[cache] = run_worker("stream", args.folder, args.steps)
        print(f"streaming, page cache {cache} ({'?' if cached is None else f'{cached:.0%}'} of the shards cached): "
              f"{runs[cache]}", flush=True)
    memory = run_worker("memory", args.folder, args.steps)
    print(f"in memory: {memory}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        diff = resumed_difference(args.folder, Path(tmp))
    worst = {key: max(run[key] for run in runs.values()) for key in ("peak_rss_mb", "peak_anon_mb", "peak_file_mb")}
    rate = min(run["rows_per_s"] for run in runs.values())
    print(f"rows={args.rows} peak_rss_mb={worst['peak_rss_mb']:.0f} peak_anon_mb={worst['peak_anon_mb']:.0f} "
          f"peak_file_mb={worst['peak_file_mb']:.0f} streaming_rows_per_s={rate:.0f} "
          f"in_memory_rows_per_s={memory['rows_per_s']:.0f} ratio={rate / memory['rows_per_s']:.2f} "
          f"resumed_max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
