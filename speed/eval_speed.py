"""Evaluation speed: the benchmark runner against per-item evaluation, on a SugarCrepe-format fixture.

Fixture: the offline SugarCrepe analogue (real file layout: seven JSON files and a ``val2017/`` folder), whose
items share images across subsets as the real benchmark's do. Model: open_clip ViT-B-32 with random init (same
architecture and cost as the pretrained one; no download). The baseline does what a plain evaluation loop does:
for every item, open and preprocess its image, encode it and its two captions. The runner
(``labclip_utils.evaluation.encode_task``) opens and encodes each unique image and caption once, in
batches, with an empty cache. Both give the same scores (checked).

    python speed/eval_speed.py [--images 48]

Last line: ``speedup=<ratio> unique_images=<n> items=<n>``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from labclip_utils.benchmarks.offline import write_sugarcrepe
from labclip_utils.benchmarks.sugarcrepe import load_sugarcrepe
from labclip_utils.evaluation import choice_scores, encode_task
from labclip_utils.models import load_encoder
from labclip_utils.store import EmbeddingStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    enc = load_encoder("ViT-B-32", pretrained=None, device="auto")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sugarcrepe"
        write_sugarcrepe(folder, args.images, args.seed, image_size=224)
        task = load_sugarcrepe(folder)

        start = time.perf_counter()
        baseline = np.zeros((len(task), 2))
        with torch.no_grad():
            for i, options in enumerate(task.options):
                pixels = enc.preprocess(task.images[task.image_index[i]].load()).unsqueeze(0).to(enc.device)
                image = F.normalize(enc.model.encode_image(pixels).float(), dim=-1)
                texts = F.normalize(enc.text_forward(enc.tokenize(list(options)).to(enc.device)).float(), dim=-1)
                baseline[i] = (image @ texts.T).cpu().numpy()[0]
        per_item = time.perf_counter() - start

        start = time.perf_counter()
        emb = encode_task(enc, task, store=EmbeddingStore(root=Path(tmp) / "cache"), progress=False)
        ours = choice_scores(emb, task)
        runner = time.perf_counter() - start

    diff = float(np.abs(ours - baseline).max())
    assert diff < 1e-4, f"scores differ by {diff}"
    print(f"items: {len(task)} over {len(task.images)} unique images and {len(emb.text_row)} unique captions")
    print(f"per-item evaluation: {per_item:.1f} s; runner: {runner:.1f} s; max score difference {diff:.1e}")
    print(f"speedup={per_item / runner:.2f} unique_images={len(task.images)} items={len(task)}")


if __name__ == "__main__":
    main()
