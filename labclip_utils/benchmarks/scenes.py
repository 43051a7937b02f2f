"""The paper's synthetic benchmarks as choice tasks: CLEVR-style scenes, PUG:SPAR and PUG:SPARE.

A folder in any of the three real layouts (read by :func:`labclip_utils.scenes.load_scenes`) becomes the
swap test: each scene's caption against its attribute-swapped negative. As in LABCLIP's code, CLEVR counts
ties as correct and skips scenes whose negative would equal the caption; PUG counts ties as wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labclip_utils.benchmarks.base import ChoiceTask, ImageRef, check_images_exist, unique_images
from labclip_utils.scenes import load_scenes
from labclip_utils.scenes.dataset import SceneDataset


def binding_task(ds: SceneDataset, name: str, split: str | None = "test") -> ChoiceTask:
    """The swap test on a loaded scene folder (``split=None``: every scene; default: the held-out test split)."""
    if ds.root is None:
        raise ValueError(f"{ds.name}: binding_task needs scenes read from files (use save_scenes/load_scenes)")
    data = ds.select(split) if split else ds
    keep = [i for i, neg in enumerate(data.negatives) if neg is not None]
    if not keep:
        raise ValueError(f"{data.root}: no scene of split {split!r} has a hard negative")
    refs = [ImageRef(str(data.root / data.records[i].image_file)) for i in keep]
    check_images_exist(refs, data.root, [data.records[i].image_file for i in keep])
    images, index = unique_images(refs)
    world = data.records[keep[0]].world
    return ChoiceTask(name, images, index, [(data.negatives[i], data.captions[i]) for i in keep],
                      np.ones(len(keep), dtype=np.int64), np.array([name] * len(keep), dtype=object), data.root,
                      metric="binding", ties="correct" if world == "clevr" else "strict",
                      notes={"split": split or "all", "skipped_without_negative": len(data) - len(keep)})


def load_binding(root: str | Path, name: str, split: str | None = "test") -> ChoiceTask:
    """Read a CLEVR / PUG:SPAR / PUG:SPARE folder and return its swap test."""
    return binding_task(load_scenes(root), name, split)
