"""COCO (Karpathy splits): text↔image retrieval on the 5k test images, and LABCLIP's COCO training pairs.

- ``coco_karpathy_test.json`` (also val): one record per image, ``{"image": "val2014/COCO_val2014_...jpg",
  "caption": [5 strings]}``; images under the same root. Captions are cleaned with ``pre_caption`` as upstream.
- ``coco_karpathy_train.json``: one record per caption, ``{"caption", "image", "image_id"}``. LABCLIP trains A on
  these with NegCLIP's noun/adjective shuffle as the hard negative (:func:`coco_training_pairs`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labclip_utils.benchmarks.aro import read_karpathy_test
from labclip_utils.benchmarks.base import (
    BenchmarkFormatError,
    ImageRef,
    RetrievalTask,
    check_images_exist,
    format_error,
    read_json,
    require,
    unique_images,
)
from labclip_utils.benchmarks.text import Tagger, negclip_negative, pre_caption


def load_coco_retrieval(root: str | Path, split: str = "test", captions_per_image: int = 5,
                        max_words: int = 30) -> RetrievalTask:
    """The Karpathy ``split`` (5,000 images, 25,000 captions for ``test``) as a retrieval task."""
    root = Path(root)
    path = root / f"coco_karpathy_{split}.json"
    records = read_karpathy_test(path)
    refs, texts, owner = [], [], []
    for i, (image, caps) in enumerate(records):
        if len(caps) < captions_per_image:
            raise format_error(path, i, f"{len(caps)} captions, expected at least {captions_per_image}")
        refs.append(ImageRef(str(root / image)))
        texts += [pre_caption(c, max_words) for c in caps[:captions_per_image]]
        owner += [i] * captions_per_image
    check_images_exist(refs, path, [image for image, _ in records])
    images, index = unique_images(refs)
    if len(images) != len(refs):
        raise BenchmarkFormatError(f"{path}: an image is listed twice")
    return RetrievalTask(f"coco_{split}", images, texts, np.asarray(owner, dtype=np.int64), path)


def coco_training_pairs(root: str | Path, tagger: Tagger, seed: int = 0, *, limit: int | None = None,
                        drop_unchanged: bool = False) -> tuple[list[ImageRef], list[str], list[str]]:
    """``(images, positives, negatives)`` from ``coco_karpathy_train.json``: one NegCLIP negative per caption.

    Upstream keeps negatives equal to their positive (a caption with one noun and one adjective);
    ``drop_unchanged=True`` leaves those out. Seeded, so the same call gives the same negatives.
    """
    root = Path(root)
    path = root / "coco_karpathy_train.json"
    records = read_json(path)
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{path}: expected a list of records, one per caption")
    rng = np.random.default_rng(seed)
    images, positives, negatives, items = [], [], [], []
    for i, rec in enumerate(records[:limit]):
        require(rec, ("caption", "image"), path, i)
        pos, neg = negclip_negative(rec["caption"], tagger, rng)
        if drop_unchanged and pos == neg:
            continue
        images.append(ImageRef(str(root / rec["image"])))
        positives.append(pos)
        negatives.append(neg)
        items.append(i)
    check_images_exist(images, path, items)
    return images, positives, negatives


def coco_labclip(encoder, root: str | Path, tagger: Tagger, config=None, *, seed: int = 0, store=None,
                 progress: bool = True):
    """LABCLIP's A for real benchmarks: fitted on COCO Karpathy train with NegCLIP negatives (paper profile).

    Uses the COCO recipe of the paper's code (Adam, lr 1e-3, batch 1024, 10 epochs, last epoch kept) unless
    ``config`` says otherwise. Embeddings of the ~113k images and ~566k captions are cached.
    """
    import hashlib

    import torch

    from labclip_utils.benchmarks.runner import encode_refs
    from labclip_utils.cache import cached_tensors
    from labclip_utils.labclip import LabclipConfig, fit_labclip
    from labclip_utils.store import STORE_VERSION, EmbeddingStore

    config = config or LabclipConfig(lr=1e-3, batch_size=1024, epochs=10, keep="last")
    store = store or EmbeddingStore()
    root = Path(root)
    images, positives, negatives = coco_training_pairs(root, tagger, seed)
    unique, index = unique_images(images)
    source = hashlib.sha256((root / "coco_karpathy_train.json").read_bytes()).hexdigest()[:16]
    key = {"version": STORE_VERSION, "encoder": encoder.id, "preprocess": encoder.preprocess_id,
           "coco_train": source, "tagger": tagger.id, "seed": seed, "dtype": store.dtype}

    def compute() -> dict[str, torch.Tensor]:
        return {"images": encode_refs(encoder, unique, progress=progress),
                "positives": encoder.encode_texts(positives, progress=progress),
                "negatives": encoder.encode_texts(negatives, progress=progress)}

    tensors, _ = cached_tensors(store.root, "coco_train", key, compute)
    triplet = (tensors["images"][torch.as_tensor(index)], tensors["positives"], tensors["negatives"])
    return fit_labclip(triplet, None, config, progress=progress)
