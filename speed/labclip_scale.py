"""Fitting A at scale: streamed from clip-retrieval shards versus the same rows in memory, and a resumed fit.

Data: synthetic unit-norm embeddings with linearly recoverable binding (``synthetic_binding_embeddings``), written
in clip-retrieval's layout as float16 shards of 250,000 rows (``--rows``, default 2,000,000 × 512: 6 GB on disk).

- **streaming**: ``fit_streaming`` on the folder (one 32,768-row chunk in memory, ``heap_threshold_mb=1``
  so freed batch buffers leave the heap), in a fresh process whose peak resident memory is measured;
- **in memory**: every shard loaded as float32 first (what ``fit_labclip`` needs: 12 GB at 2M rows), then the same
  trainer over the same batches, in another fresh process;
- **resumed**: a fit on the first shard killed (SIGKILL) part-way and started again from its checkpoint, against
  the same fit uninterrupted.

Both throughput runs take ``--steps`` batches of 4,096 (the paper's CC3M batch).

    python speed/labclip_scale.py [--rows 2000000] [--steps 60] [--folder /tmp/labclip-scale]

Last line: ``rows= peak_rss_mb= streaming_rows_per_s= in_memory_rows_per_s= ratio= resumed_max_abs_diff=``.
"""

from __future__ import annotations

import argparse
import json
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
    from labclip_utils.scale import shard_path, write_clip_retrieval

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


WORKER = r"""
import json, resource, sys, time
import numpy as np
from labclip_utils.labclip import LabclipConfig
from labclip_utils.scale import InMemoryShards, ShardedEmbeddings, StreamConfig, fit_streaming
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
    fit_streaming(data, LabclipConfig(epochs=1, batch_size=4096, lr=1e-3), StreamConfig(heap_threshold_mb=1),
                  progress=False, on_step=on_step)
except Stop:
    pass
rate = 4096 * (len(times) - 1) / (times[-1] - times[0])  # steady state: from the first step to the last
print(json.dumps({"rows_per_s": rate, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

RESUME = r"""
import os, signal, sys
from labclip_utils.labclip import LabclipConfig
from labclip_utils.scale import ShardedEmbeddings, StreamConfig, fit_streaming
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
    args = parser.parse_args()
    start = time.perf_counter()
    write_folder(args.folder, args.rows)
    print(f"folder ready in {time.perf_counter() - start:.0f} s", flush=True)
    streaming = run_worker("stream", args.folder, args.steps)
    print(f"streaming: {streaming}", flush=True)
    memory = run_worker("memory", args.folder, args.steps)
    print(f"in memory: {memory}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        diff = resumed_difference(args.folder, Path(tmp))
    print(f"rows={args.rows} peak_rss_mb={streaming['peak_rss_mb']:.0f} "
          f"streaming_rows_per_s={streaming['rows_per_s']:.0f} in_memory_rows_per_s={memory['rows_per_s']:.0f} "
          f"ratio={streaming['rows_per_s'] / memory['rows_per_s']:.2f} resumed_max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
