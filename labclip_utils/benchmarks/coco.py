"""COCO (Karpathy splits): text↔image retrieval on the 5k test images, and LABCLIP's COCO training pairs.

- ``coco_karpathy_test.json`` (also val): one record per image, ``{"image": "val2014/COCO_val2014_...jpg",
  "caption": [strings]}``; images under the same root. Retrieval uses the first five captions of each image,
  cleaned with ``pre_caption(…, 40)`` as LABCLIP's COCO script does.
- LABCLIP trains A on the Karpathy training images with NegCLIP's noun/adjective shuffle as the hard negative
  (:func:`coco_training_pairs`). The paper's code reads the images and captions through COCO's own annotation files
  (``annotations/captions_{train,val}2014.json``) and takes the first five captions of each image; its loop over
  the val2014 images of the Karpathy training split (the "restval" images) reads ``coco_train[i]``, the i-th
  *train* image, instead of the i-th val image: those 30,504 places repeat train2014 images. ``restval="paper"``
  reproduces that; ``restval="val2014"`` uses the restval images as intended; ``restval="karpathy"`` takes every
  caption record of ``coco_karpathy_train.json`` (no annotation files needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from labclip_utils.benchmarks.aro import read_karpathy_test
from labclip_utils.benchmarks.base import check_images_exist, format_error, inside, read_json, require
from labclip_utils.benchmarks.perturbations import Shuffler, Tagger, negclip_negative, pre_caption
from labclip_utils.labclip import LabclipConfig, fit_labclip
from labclip_utils.store import encode
from labclip_utils.tasks import BenchmarkFormatError, ImageRef, RetrievalTask, unique_images

#: LABCLIP's COCO script cleans captions to at most this many words (ARO's retrieval code uses 30).
COCO_MAX_WORDS = 40
Restval = Literal["paper", "val2014", "karpathy"]


def load_coco_retrieval(root: str | Path, split: str = "test", captions_per_image: int = 5,
                        max_words: int = COCO_MAX_WORDS) -> RetrievalTask:
    """The Karpathy ``split`` (5,000 images, 25,000 captions for ``test``) as a retrieval task."""
    root = Path(root)
    path = root / f"coco_karpathy_{split}.json"
    records = read_karpathy_test(path)
    refs, texts, owner = [], [], []
    for i, (image, caps) in enumerate(records):
        if len(caps) < captions_per_image:
            raise format_error(path, i, f"{len(caps)} captions, expected at least {captions_per_image}")
        refs.append(ImageRef(inside(root, image, path, i)))
        texts += [pre_caption(c, max_words) for c in caps[:captions_per_image]]
        owner += [i] * captions_per_image
    check_images_exist(refs, path, [image for image, _ in records])
    images, index = unique_images(refs)
    if len(images) != len(refs):
        raise BenchmarkFormatError(f"{path}: an image is listed twice")
    return RetrievalTask(f"coco_{split}", images, texts, np.asarray(owner, dtype=np.int64), path,
                         notes={"max_words": max_words})


def karpathy_train_ids(root: Path) -> set[int]:
    """The COCO image ids of the Karpathy training split (``image_id`` is ``"coco_<id>"``; LABCLIP's
    ``get_image_ids``)."""
    path = root / "coco_karpathy_train.json"
    records = read_json(path)
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{path}: expected a list of records, one per caption")
    ids = set()
    for i, rec in enumerate(records):
        require(rec, ("image_id",), path, i)
        try:
            ids.add(int(str(rec["image_id"]).split("_")[-1]))
        except ValueError as exc:
            raise format_error(path, i, f"image_id {rec['image_id']!r} does not end in a number") from exc
    return ids


def coco_captions(root: Path, split: str) -> tuple[list[int], dict[int, str], dict[int, list[str]]]:
    """COCO's ``annotations/captions_{split}2014.json``: image ids sorted (torchvision's ``CocoCaptions``), file
    names, and each image's captions in the file's order."""
    path = root / "annotations" / f"captions_{split}2014.json"
    data = read_json(path)
    require(data, ("images", "annotations"), path, None)
    files, captions = {}, {}
    for i, image in enumerate(data["images"]):
        require(image, ("id", "file_name"), path, f"images[{i}]")
        files[int(image["id"])] = str(image["file_name"])
        captions[int(image["id"])] = []
    for i, ann in enumerate(data["annotations"]):
        require(ann, ("image_id", "caption"), path, f"annotations[{i}]")
        if int(ann["image_id"]) not in captions:
            raise format_error(path, f"annotations[{i}]", f"image_id {ann['image_id']} is not among the images")
        captions[int(ann["image_id"])].append(str(ann["caption"]))
    return sorted(files), files, captions


def coco_training_images(root: str | Path, restval: Restval = "paper") -> tuple[list[ImageRef], list[list[str]]]:
    """The images A is trained on and their captions (five each, except ``restval="karpathy"``)."""
    root = Path(root)
    if restval not in ("paper", "val2014", "karpathy"):
        raise ValueError(f"restval must be 'paper', 'val2014' or 'karpathy', got {restval!r}")
    if restval == "karpathy":
        path = root / "coco_karpathy_train.json"
        records = read_json(path)
        if not isinstance(records, list):
            raise BenchmarkFormatError(f"{path}: expected a list of records, one per caption")
        images, captions = [], []
        for i, rec in enumerate(records):
            require(rec, ("caption", "image"), path, i)
            images.append(ImageRef(inside(root, rec["image"], path, i)))
            captions.append([str(rec["caption"])])
        check_images_exist(images, path, range(len(images)))
        return images, captions
    wanted = karpathy_train_ids(root)
    train_ids, train_files, train_caps = coco_captions(root, "train")
    val_ids, val_files, val_caps = coco_captions(root, "val")
    images, captions = [], []
    for image_id in train_ids:
        if image_id in wanted:
            images.append(ImageRef(str(root / "train2014" / train_files[image_id])))
            captions.append(train_caps[image_id][:5])
    for i, image_id in enumerate(val_ids):
        if image_id in wanted:
            if restval == "paper":  # the paper's code reads coco_train[i] here
                if i >= len(train_ids):
                    raise BenchmarkFormatError(f"{root}: more val2014 than train2014 images")
                twin = train_ids[i]
                images.append(ImageRef(str(root / "train2014" / train_files[twin])))
                captions.append(train_caps[twin][:5])
            else:
                images.append(ImageRef(str(root / "val2014" / val_files[image_id])))
                captions.append(val_caps[image_id][:5])
    check_images_exist(images, root / "annotations", range(len(images)))
    return images, captions


def coco_training_pairs(root: str | Path, tagger: Tagger, seed: int = 0, *, restval: Restval = "paper",
                        limit: int | None = None, drop_unchanged: bool = False
                        ) -> tuple[list[ImageRef], list[str], list[str]]:
    """``(images, positives, negatives)``, one row per caption: the caption cleaned with ``pre_caption(…, 40)`` and
    its NegCLIP shuffle (seeded). Upstream keeps negatives equal to their positive; ``drop_unchanged=True`` leaves
    those out. ``limit`` keeps the first images (a rehearsal)."""
    images, captions = coco_training_images(root, restval)
    rng = Shuffler(seed)
    out_images, positives, negatives = [], [], []
    for ref, caps in list(zip(images, captions, strict=True))[:limit]:
        for caption in caps:
            pos, neg = negclip_negative(caption, tagger, rng)
            if drop_unchanged and pos == neg:
                continue
            out_images.append(ref)
            positives.append(pos)
            negatives.append(neg)
    if not positives:
        raise BenchmarkFormatError(f"{root}: no COCO training caption")
    return out_images, positives, negatives


def coco_labclip(encoder, root: str | Path, tagger: Tagger, config=None, *, seed: int = 0, restval: Restval = "paper",
                 limit: int | None = None, store=None, progress: bool = True):
    """LABCLIP's A for real benchmarks: fitted on COCO's Karpathy training images with NegCLIP negatives.

    Uses the COCO recipe of the paper's code (Adam, lr 1e-3, batch 1024, 10 epochs, last epoch kept) unless
    ``config`` says otherwise. The embeddings of the ~113k images and ~566k captions go through the store.
    """
    config = config or LabclipConfig.coco()
    images, positives, negatives = coco_training_pairs(root, tagger, seed, restval=restval, limit=limit)
    emb = encode(encoder, images, positives + negatives, store=store, progress=progress)
    triplet = (emb.image_rows(images), emb.text(positives), emb.text(negatives))
    return fit_labclip(triplet, None, config, progress=progress)
