"""SugarCrepe (Hsieh et al., 2023): seven JSON files of (COCO val2017 image, caption, negative caption).

Each file is a dict keyed by string index, ``{"0": {"filename": "000000565045.jpg", "caption": ...,
"negative_caption": ...}, ...}``; images live in ``val2017/``. An item is right when the true caption scores
strictly higher (``main_eval.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labclip_utils.benchmarks.base import check_images_exist, format_error, inside, read_json, require
from labclip_utils.metrics import SUGARCREPE_FAMILIES
from labclip_utils.tasks import BenchmarkFormatError, ChoiceTask, ImageRef, unique_images

SUBSETS: tuple[str, ...] = tuple(s for family in SUGARCREPE_FAMILIES.values() for s in family)
FIELDS = ("filename", "caption", "negative_caption")


def load_sugarcrepe(root: str | Path, image_dir: str | Path | None = None,
                    subsets: tuple[str, ...] = SUBSETS) -> ChoiceTask:
    """Every item of the chosen subsets: options ``(negative, positive)``, answer 1, strict ties.

    ``root`` holds the JSON files (``data/`` inside it is also accepted); ``image_dir`` defaults to
    ``root/val2017``. A missing file, key or image raises an error naming the file and the item.
    """
    root = Path(root)
    data = root / "data" if (root / "data").is_dir() else root
    image_dir = Path(image_dir) if image_dir else root / "val2017"
    refs, options, subset, items = [], [], [], []
    for name in subsets:
        if name not in SUBSETS:
            raise ValueError(f"unknown SugarCrepe subset {name!r}; choose from {SUBSETS}")
        path = data / f"{name}.json"
        content = read_json(path)
        if not isinstance(content, dict):
            raise BenchmarkFormatError(f"{path}: expected an object keyed by item index")
        for key, record in content.items():
            require(record, FIELDS, path, key)
            for f in FIELDS:
                if not isinstance(record[f], str) or not record[f].strip():
                    raise format_error(path, key, f"{f!r} must be a non-empty string")
            refs.append(ImageRef(inside(image_dir, record["filename"], path, key)))
            options.append((record["negative_caption"], record["caption"]))
            subset.append(name)
            items.append(f"{name}.json:{key}")
    check_images_exist(refs, data, items)
    images, index = unique_images(refs)
    return ChoiceTask("sugarcrepe", images, index, options, np.ones(len(options), dtype=np.int64),
                      np.array(subset, dtype=object), data, metric="sugarcrepe", ties="strict")
