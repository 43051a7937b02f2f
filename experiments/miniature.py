"""Train the miniature CLIP from scratch with several seeds and run the paper's whole diagnosis on each.

Nothing is read from the book's cache: each seed trains in a fresh temporary folder, so ``train_s`` is the real
training time on this machine. The spread over seeds is what the chapters' claims are checked against.

    python experiments/miniature.py [--seeds 0 1 2 3 4 10 11 12] [--set image_tower=conv4 centre=true ...]
                                    [--pool N] [--csv PATH]

``--set`` changes fields of :class:`~labclip_utils.models.miniature.MiniatureConfig` (values are read as JSON,
else as strings) and ``--pool`` the number of evaluation scenes (A is fitted on the pool's training split), which is
how each row of ``labclip_utils/records/miniature_design.csv`` (the variants tried while designing the miniature, one
seed each; ``experiments/miniature_design.py`` re-measures them all) is measured. Without ``--set`` and ``--pool``
the per-seed table is written to ``labclip_utils/records/miniature_seeds.csv``, which chapter 2 shows as the seed
spread of its numbers. The default seeds are the three the miniature was designed on (0, 1, 2) and five it never saw
(3, 4, 10, 11, 12); each row carries the ``code_digest`` of the code that trained and diagnosed it.

Last line (means over the seeds; held-out combinations unless a key says ``_seen``; gaps and probe cosines on
seen combinations):
``swap= image_probe= bow_probe= random_probe= text_probe_heldout= random_text_probe_heldout= swap_after_A_seen=
swap_after_A_heldout= gap= gap_after_A= probe_cos= probe_cos_after_A= binding_cos= binding_cos_after_A= train_s=
min_swap= min_swap_after_A_heldout=`` (the last two: the lowest seed's swap test and held-out LABCLIP)
"""

from __future__ import annotations

import argparse
import inspect
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from labclip_utils.diagnosis import diagnose
from labclip_utils.models.miniature import MiniatureConfig
from labclip_utils.models.miniature_training import load_miniature
from labclip_utils.records import record_digest
from labclip_utils.scenes import evaluation_scenes
from labclip_utils.store import EmbeddingStore

SEEDS_CSV = Path(__file__).resolve().parents[1] / "labclip_utils" / "records" / "miniature_seeds.csv"
DEFAULT_SEEDS = [0, 1, 2, 3, 4, 10, 11, 12]  # the design's three seeds and five it never used
POOL = inspect.signature(evaluation_scenes).parameters["n_pool"].default  # the book's evaluation pool


def parse_overrides(items: list[str]) -> dict:
    """``key=value`` strings → config fields (JSON values, else strings); unknown fields are refused."""
    fields = MiniatureConfig.__dataclass_fields__
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields or key in ("seed", "extra"):
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE with FIELD one of "
                             f"{sorted(set(fields) - {'seed', 'extra'})}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def run(seed: int, overrides: dict | None = None, pool: int = POOL, directions: bool = True) -> dict[str, float]:
    """Train the miniature (``overrides`` on its config) from scratch in a temporary folder and diagnose it on
    ``pool`` evaluation scenes; one row of numbers (``directions=False`` skips the slow direction cosines: NaN)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        config = replace(MiniatureConfig(seed=seed), **(overrides or {}))
        encoder = load_miniature(f"seed{seed}", config=config, cache_dir=tmp, progress=False)
        train_s = time.perf_counter() - start
        assert encoder.trained_now
        control = load_miniature(None, config=config)
        d = diagnose(encoder, evaluation_scenes(seed, n_pool=pool), control=control,
                     store=EmbeddingStore(f"{tmp}/embeddings"), directions=directions, progress=False)
    return {"seed": seed, "train_s": train_s, "torch_threads": torch.get_num_threads(),
            "swap": d.swap.heldout, "swap_seen": d.swap.seen,
            "image_probe": d.probes["image emb."].heldout, "image_probe_seen": d.probes["image emb."].seen,
            "bow_probe": d.probes["bag of words"].heldout, "random_probe": d.probes["random-init image"].heldout,
            "text_probe_heldout": d.probes["text emb."].heldout,
            "random_text_probe_heldout": d.probes["random-init text"].heldout,
            "bigram_probe_heldout": d.probes["bag of bigrams (text)"].heldout,
            "swap_after_A_seen": d.swap_after.seen, "swap_after_A_heldout": d.swap_after.heldout,
            "gap": d.gap.seen, "gap_after_A": d.gap_after.seen,
            "probe_cos": d.probe_cos.seen, "probe_cos_after_A": d.probe_cos_after.seen,
            "binding_cos": d.binding_cos.seen, "binding_cos_after_A": d.binding_cos_after.seen,
            "i2t_R@1": d.retrieval.seen, "i2t_R@1_after_A": d.retrieval_after.seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=DEFAULT_SEEDS)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="change the miniature's config")
    parser.add_argument("--pool", type=int, default=POOL, help="evaluation scenes (A is fitted on their train split)")
    parser.add_argument("--csv", type=Path, default=None,
                        help=f"write the per-seed table here (default without --set and --pool: {SEEDS_CSV})")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    csv = args.csv or (None if overrides or args.pool != POOL else SEEDS_CSV)
    # the code that trains the miniature, draws the evaluation scenes and diagnoses them (read_record refuses the
    # table once that code changes): a row is only comparable with rows of the same digest
    digest = record_digest("miniature_seeds.csv")
    start = time.perf_counter()
    rows = []
    for seed in args.seeds:
        rows.append(run(seed, overrides, args.pool))
        print(f"seed {seed}: trained in {rows[-1]['train_s']:.0f} s, held-out swap {rows[-1]['swap']:.3f}, "
              f"held-out LABCLIP {rows[-1]['swap_after_A_heldout']:.3f}", flush=True)
    wall_s = time.perf_counter() - start
    table = pd.DataFrame(rows).set_index("seed")
    table["code_digest"] = digest
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        table.round(4).to_csv(csv)
        print(f"per-seed table written to {csv}")
    numbers = table.drop(columns="code_digest")
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_rows", None):
        print(numbers.T.round(3))
        print(f"min / median / max over {len(table)} seeds ({', '.join(map(str, table.index))}), "
              f"code {digest}, {wall_s / 60:.1f} min in all:")
        print(pd.DataFrame({"min": numbers.min(), "median": numbers.median(), "max": numbers.max()}).round(3))
    m = numbers.mean()
    keys = ("swap", "image_probe", "bow_probe", "random_probe", "text_probe_heldout", "random_text_probe_heldout",
            "swap_after_A_seen", "swap_after_A_heldout", "gap", "gap_after_A", "probe_cos", "probe_cos_after_A",
            "binding_cos", "binding_cos_after_A")
    print(" ".join(f"{k}={m[k]:.3f}" for k in keys) + f" train_s={m['train_s']:.0f}"
          + f" min_swap={numbers['swap'].min():.3f}"
          + f" min_swap_after_A_heldout={numbers['swap_after_A_heldout'].min():.3f}")


if __name__ == "__main__":
    main()
