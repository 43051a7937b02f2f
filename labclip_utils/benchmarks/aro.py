"""ARO (Yuksekgonul et al., ICLR 2023): VG-Relation, VG-Attribution, COCO-Order and Flickr30k-Order.

- **VG-Relation / VG-Attribution**: ``visual_genome_{relation,attribution}.json``, a list of records with
  ``image_path`` (in ``images/``), a box ``bbox_x, bbox_y, bbox_w, bbox_h`` the image is cropped to, and
  ``true_caption`` / ``false_caption``; the macro-average key is ``relation_name`` (VG-R) or the two
  ``attributes`` joined by ``_`` (VG-A, groups with fewer than 25 items dropped). Options are
  ``(false, true)`` and ARO takes the ``argmax``, so a tie goes to the false caption.
- **COCO-/Flickr30k-Order**: every caption of the Karpathy test split (``coco_karpathy_test.json``,
  ``flickr30k_test.json``) with four word-order perturbations
  (:func:`~labclip_utils.benchmarks.perturbations.order_options`, ARO's functions draw for draw); right when the
  original, option 0, wins. The perturbations are random, so they are generated **once** with a fixed seed and stored
  next to the source file; later loads read them back (ARO regenerates them every run).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

import numpy as np

from labclip_utils.benchmarks.base import check_images_exist, format_error, inside, read_json, require
from labclip_utils.benchmarks.perturbations import Shuffler, Tagger, order_options, tokenizer_id
from labclip_utils.io.files import atomic_write, file_lock
from labclip_utils.tasks import BenchmarkFormatError, ChoiceTask, ImageRef, unique_images

VG_FILES = {"vg_relation": "visual_genome_relation.json", "vg_attribution": "visual_genome_attribution.json"}
BOX = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")
ORDER_FILES = {"coco_order": "coco_karpathy_test.json", "flickr30k_order": "flickr30k_test.json"}


def _load_vg(root: Path, which: str) -> ChoiceTask:
    path = root / VG_FILES[which]
    records = read_json(path)
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{path}: expected a list of records")
    group_key = "relation_name" if which == "vg_relation" else "attributes"
    refs, options, groups, items = [], [], [], []
    for i, rec in enumerate(records):
        require(rec, ("image_path", "true_caption", "false_caption", group_key, *BOX), path, i)
        try:
            x, y, w, h = (float(rec[k]) for k in BOX)
        except (TypeError, ValueError) as exc:
            raise format_error(path, i, f"bounding box is not numeric: {[rec[k] for k in BOX]}") from exc
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0 or x < 0 or y < 0:
            raise format_error(path, i, f"bounding box must be finite, with x, y ≥ 0 and width, height > 0; got "
                                        f"{[rec[k] for k in BOX]}")
        if which == "vg_attribution":
            attrs = rec["attributes"]
            if not isinstance(attrs, list) or len(attrs) != 2:
                raise format_error(path, i, f"'attributes' must be a list of two, got {attrs!r}")
            groups.append(f"{attrs[0]}_{attrs[1]}")
        else:
            groups.append(str(rec["relation_name"]))
        refs.append(ImageRef(inside(root / "images", rec["image_path"], path, i), (x, y, x + w, y + h)))
        options.append((rec["false_caption"], rec["true_caption"]))
        items.append(i)
    check_images_exist(refs, path, items)
    _check_boxes_inside(refs, path, items)
    images, index = unique_images(refs)
    return ChoiceTask(which, images, index, options, np.ones(len(options), dtype=np.int64),
                      np.array([which] * len(options), dtype=object), path, group=np.array(groups, dtype=object),
                      metric="aro", ties="first")


def _check_boxes_inside(refs: list[ImageRef], source: Path, items: list[int]) -> None:
    """Refuse a crop box that starts outside its image (the crop would be all black), naming the item; each image's
    size is read from its header once."""
    from PIL import Image

    sizes: dict[str, tuple[int, int]] = {}
    for ref, item in zip(refs, items, strict=True):
        if ref.path not in sizes:
            try:
                with Image.open(ref.path) as im:
                    sizes[ref.path] = im.size
            except OSError as err:
                raise format_error(source, item, f"image file {ref.path} cannot be read ({err})") from err
        width, height = sizes[ref.path]
        x0, y0, x1, y1 = ref.box
        if x0 >= width or y0 >= height:
            raise format_error(source, item, f"crop box {[x0, y0, x1, y1]} lies outside the {width}×{height} image "
                                             f"{ref.path}")


def load_vg_relation(root: str | Path) -> ChoiceTask:
    """ARO's VG-Relation: macro average over ``relation_name``."""
    return _load_vg(Path(root), "vg_relation")


def load_vg_attribution(root: str | Path) -> ChoiceTask:
    """ARO's VG-Attribution: macro average over attribute pairs with at least 25 items."""
    return _load_vg(Path(root), "vg_attribution")


def read_karpathy_test(path: Path) -> list[tuple[str, list[str]]]:
    """``[(image, [captions])]`` from a Karpathy val/test JSON (one record per image, ``caption`` a list)."""
    records = read_json(path)
    if not isinstance(records, list):
        raise BenchmarkFormatError(f"{path}: expected a list of records")
    out = []
    for i, rec in enumerate(records):
        require(rec, ("image", "caption"), path, i)
        caps = rec["caption"]
        if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
            raise format_error(path, i, f"'caption' must be a non-empty list of strings, got {caps!r}")
        out.append((str(rec["image"]), caps))
    return out


def stored_order_items(path: Path, tagger: Tagger, seed: int, max_captions: int | None = None) -> list[dict]:
    """The order items for a Karpathy file, generated once (seeded) and stored beside it; later calls read them.

    Every caption of every image is used (``max_captions`` limits that, for quick looks). The stored file is keyed
    by the source file's hash, the tagger, the tokeniser and the seed, and written atomically under a lock, so
    parallel readers never see half a file and never generate twice; a damaged stored file is regenerated.
    """
    source_hash = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    limit = "" if max_captions is None else f".first{max_captions}"
    stored = path.with_name(f"{path.stem}.order.{tagger.id}.{tokenizer_id()}.seed{seed}{limit}.{source_hash}.json")
    with file_lock(stored):
        if stored.is_file():
            try:
                items = json.loads(stored.read_text())["items"]
                if isinstance(items, list) and all(isinstance(it, dict) and len(it.get("options", ())) == 5
                                                   for it in items):
                    return items
                raise ValueError("unexpected content")
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
                warnings.warn(f"{stored} is damaged ({err}); generating the perturbations again", RuntimeWarning,
                              stacklevel=2)
                stored.unlink()
        rng = Shuffler(seed)
        items = [{"image": image, "options": order_options(c, tagger, rng)}
                 for image, caps in read_karpathy_test(path) for c in caps[:max_captions]]
        record = {"source": path.name, "seed": seed, "tagger": tagger.id, "tokenizer": tokenizer_id(), "items": items}
        atomic_write(stored, lambda tmp: tmp.write_text(json.dumps(record)))
        return items


def load_order(root: str | Path, which: str, tagger: Tagger, seed: int = 0,
               max_captions: int | None = None) -> ChoiceTask:
    """COCO-Order (``which="coco_order"``) or Flickr30k-Order: 5 options per caption, the original first; every
    caption of every image, as ARO."""
    if which not in ORDER_FILES:
        raise ValueError(f"unknown order benchmark {which!r}; choose from {sorted(ORDER_FILES)}")
    root = Path(root)
    path = root / ORDER_FILES[which]
    if not path.is_file():
        raise BenchmarkFormatError(f"{path}: file is missing")
    items = stored_order_items(path, tagger, seed, max_captions)
    refs = [ImageRef(inside(root, it["image"], path, k)) for k, it in enumerate(items)]
    check_images_exist(refs, path, [it["image"] for it in items])
    images, index = unique_images(refs)
    return ChoiceTask(which, images, index, [tuple(it["options"]) for it in items], np.zeros(len(items), np.int64),
                      np.array([which] * len(items), dtype=object), path, metric="accuracy", ties="first",
                      notes={"seed": seed, "tagger": tagger.id})
