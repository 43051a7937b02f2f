"""Is a scene's embedding the sum of its objects' embeddings? (Beyond the paper: the additive-decomposition test.)

Render each object of a 2-object scene alone, at the same place, size and background; embed the two single-object
images; add them. If the scene's image embedding is (close to) that sum, binding is linear in the embedding: each
object contributes its own colour-and-shape vector. The control adds the singles of the *swapped* scene (the same
colours and shapes, bound the other way): an additive embedding is closer to its own sum than to the swapped one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch.nn.functional as F

from labclip_utils.scenes.dataset import SceneDataset
from labclip_utils.scenes.world import SceneRecord
from labclip_utils.store import encode
from labclip_utils.tasks import scene_images


def _alone(record: SceneRecord, k: int, colour: str | None = None) -> SceneRecord:
    obj = record.objects[k]
    if colour is not None:
        obj = replace(obj, color=colour)
    return replace(record, objects=(obj,))


def additive_decomposition(encoder, ds: SceneDataset, n: int = 300, store=None) -> pd.DataFrame:
    """For up to ``n`` 2-object scenes: cos(scene, sum of its singles) and cos(scene, sum of the swapped singles).

    Returns one row per scene with both cosines and whether the scene is closer to its own sum.
    """
    picked = [i for i in range(len(ds)) if len(ds.records[i].objects) == 2
              and ds.records[i].objects[0].color != ds.records[i].objects[1].color][:n]
    if not picked:
        raise ValueError(f"{ds.name}: no 2-object scene with two different colours")
    records = []
    for i in picked:
        rec = ds.records[i]
        c0, c1 = rec.objects[0].color, rec.objects[1].color
        records += [rec, _alone(rec, 0), _alone(rec, 1), _alone(rec, 0, c1), _alone(rec, 1, c0)]
    singles = SceneDataset(records, replace(ds.settings, split="iid", negative="add_object"), name=f"{ds.name}-singles",
                           attributes=ds.attributes, objects=ds.objects)
    refs = scene_images(singles)
    emb = encode(encoder, refs, [], store=store, progress=False).image_rows(refs).reshape(len(picked), 5, -1)
    scene, own, swapped = emb[:, 0], F.normalize(emb[:, 1] + emb[:, 2], dim=-1), F.normalize(emb[:, 3] + emb[:, 4],
                                                                                             dim=-1)
    cos_own, cos_swapped = (scene * own).sum(-1), (scene * swapped).sum(-1)
    return pd.DataFrame({"scene": picked, "cos(scene, own singles)": cos_own.numpy(),
                         "cos(scene, swapped singles)": cos_swapped.numpy(),
                         "closer to its own sum": (cos_own > cos_swapped).numpy()})


def summary(table: pd.DataFrame) -> pd.Series:
    """Medians of the two cosines and the share of scenes closer to their own sum."""
    return pd.Series({"median cos(scene, own singles)": float(np.median(table["cos(scene, own singles)"])),
                      "median cos(scene, swapped singles)": float(np.median(table["cos(scene, swapped singles)"])),
                      "share closer to its own sum": float(table["closer to its own sum"].mean())})

