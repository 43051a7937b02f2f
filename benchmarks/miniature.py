"""Train the miniature CLIP from scratch with two seeds and run the paper's diagnosis on each.

Nothing is read from the book's cache: each seed trains in a fresh temporary folder, so ``train_s`` is the real
training time on this machine.

    python benchmarks/miniature.py [--seeds 0 1]

Last line (means over the seeds; probes and swap on held-out combinations unless named ``_seen``):
``swap=<before> image_probe=<p> bow_probe=<p> random_probe=<p> swap_after_A_seen=<s> swap_after_A_heldout=<s>
train_s=<seconds>``
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd
import torch

from labclip_utils.diagnostics import diagnose, evaluation_scenes
from labclip_utils.models.miniature import MiniatureConfig, load_miniature, random_init_miniature
from labclip_utils.store import EmbeddingStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            enc = load_miniature(config=MiniatureConfig(seed=seed), cache_dir=tmp, progress=False)
            train_s = time.perf_counter() - start
            assert enc.trained_now
            diag = diagnose(enc, evaluation_scenes(seed), control=random_init_miniature(MiniatureConfig(seed=seed)),
                            store=EmbeddingStore(f"{tmp}/embeddings"), progress=False)
        rows.append({"seed": seed, "train_s": train_s, "torch_threads": torch.get_num_threads(), **diag.numbers})
        print(f"seed {seed}: trained in {train_s:.0f} s", flush=True)
    table = pd.DataFrame(rows).set_index("seed")
    with pd.option_context("display.max_columns", None, "display.width", 200):
        print(table.T.round(3))
    m = table.mean()
    print(f"swap={m.swap_heldout:.3f} image_probe={m.image_probe_heldout:.3f} bow_probe={m.bow_probe_heldout:.3f} "
          f"random_probe={m.random_image_probe_heldout:.3f} swap_after_A_seen={m.swap_after_A_seen:.3f} "
          f"swap_after_A_heldout={m.swap_after_A_heldout:.3f} train_s={m.train_s:.0f}")


if __name__ == "__main__":
    main()
