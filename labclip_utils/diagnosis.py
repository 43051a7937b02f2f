"""The paper's whole argument run on one encoder, in one call: swap test, probes with controls, LABCLIP, gap.

Used by the miniature's chapter and by ``experiments/miniature.py``, so both report the same numbers. Held-out
combinations are the compositional split's test combinations; "seen" scenes are new images of training
combinations. The result is a typed object (:class:`Diagnosis`), cached so that chapters share one computation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd
import torch

from labclip_utils.cache import cached_json
from labclip_utils.gap import centroid_gap
from labclip_utils.io.hashing import code_digest
from labclip_utils.labclip import FitResult, LabclipConfig, fit_on_scenes
from labclip_utils.metrics import retrieval, swap_accuracy
from labclip_utils.models.encoder import Encoder
from labclip_utils.paper import beside_paper
from labclip_utils.probing import (
    bag_of_bigrams,
    binding_direction_cosine,
    chance_accuracy,
    object_probe,
    pixel_features,
    probe_direction_cosine,
)
from labclip_utils.scenes.evaluation_set import EvalScenes
from labclip_utils.store import EmbeddingStore, SceneEmbeddings, embed_scenes

#: Regularisation of the probes behind the probe-direction cosine: weak, so that the weights keep the
#: binding-specific direction (see :func:`~labclip_utils.probing.probe_direction_cosine`).
PROBE_COS_C = 100.0
SPLIT_LABELS = {"seen": "seen combinations", "heldout": "held-out combinations"}
#: Probe rows, in the order tables show them.
PROBE_LABELS = ("image emb.", "text emb.", "bag of words", "bag of bigrams (text)", "random-init image",
                "random-init text", "raw pixels (8×8)")


@dataclass(frozen=True)
class SplitScores:
    """One measurement on seen and on held-out combinations."""

    seen: float
    heldout: float


@dataclass
class Diagnosis:
    """Every number of the diagnosis, the LABCLIP fit it used, and the embeddings."""

    chance: float
    swap: SplitScores
    swap_after: SplitScores
    retrieval: SplitScores
    retrieval_after: SplitScores
    gap: SplitScores
    gap_after: SplitScores
    #: The paper's probe-direction cosine (a colour probe per object on each modality; cosine of their weights),
    #: with weakly regularised probes (``C = PROBE_COS_C``; the paper does not state its regularisation).
    probe_cos: SplitScores
    probe_cos_after: SplitScores
    #: The binding-direction cosine (:func:`~labclip_utils.probing.binding_direction_cosine`).
    binding_cos: SplitScores
    binding_cos_after: SplitScores
    probes: dict[str, SplitScores]
    fit: FitResult = field(repr=False)
    embeddings: dict[str, SceneEmbeddings] = field(repr=False)

    def probe_table(self) -> pd.DataFrame:
        """Probe accuracies: rows are features (embeddings and controls), columns seen / held-out scenes."""
        rows = [label for label in PROBE_LABELS if label in self.probes]
        return pd.DataFrame({SPLIT_LABELS[s]: [getattr(self.probes[r], s) for r in rows] for s in SPLIT_LABELS},
                            index=pd.Index(rows, name="features"))

    def summary_table(self) -> pd.DataFrame:
        """Swap test, retrieval and modality gap before and after LABCLIP, on seen and held-out scenes."""
        rows = {"swap test, CLIP": self.swap, "swap test, LABCLIP": self.swap_after,
                "image→text R@1, CLIP": self.retrieval, "image→text R@1, LABCLIP": self.retrieval_after,
                "modality gap, CLIP": self.gap, "modality gap, LABCLIP": self.gap_after,
                "binding-direction cosine, CLIP": self.binding_cos,
                "binding-direction cosine, LABCLIP": self.binding_cos_after}
        return pd.DataFrame({SPLIT_LABELS[s]: [getattr(v, s) for v in rows.values()] for s in SPLIT_LABELS},
                            index=pd.Index(list(rows), name="measurement"))

    def beside_paper(self) -> pd.DataFrame:
        """This diagnosis's held-out numbers next to the paper's CLEVR numbers (labelled with their sources)."""
        return beside_paper([
            ("CLEVR", "swap accuracy (test split)", "CLIP", self.swap.heldout),
            ("CLEVR", "swap accuracy (test split)", "LABCLIP", self.swap_after.heldout),
            ("CLEVR, 2 objects", "image probe (per-object colour)", "CLIP", self.probes["image emb."].heldout),
            ("CLEVR, 2 objects", "text probe (per-object colour)", "CLIP", self.probes["text emb."].heldout),
        ])


def diagnose(encoder: Encoder, scenes: EvalScenes, *, control: Encoder | None = None,
             store: EmbeddingStore | None = None, config: LabclipConfig | None = None, n_probe: int = 5000,
             pixels: bool = False, directions: bool = True, progress: bool = True) -> Diagnosis:
    """Swap test, probes (embedding, bag-of-words, random-init control, chance), LABCLIP and the modality gap.

    ``control`` is the same architecture with random init (for the random-init probe controls); ``pixels`` adds a
    probe on raw 8×8 pixels; ``directions=False`` skips the probe- and binding-direction cosines (NaN). The
    probe-direction cosine is computed on seen combinations only (its weakly regularised probes are slow to fit;
    held-out is NaN). The numbers are cached (key: encoders, scenes, settings and this code), so chapters
    that ask for the same diagnosis share one computation; the LABCLIP fit is :func:`fit_on_scenes`'s, shared too.
    """
    store = store or EmbeddingStore.of(encoder)
    config = config or LabclipConfig()
    pool = embed_scenes(encoder, scenes.pool, store=store, progress=progress)
    seen = embed_scenes(encoder, scenes.seen, store=store, progress=progress)
    fit = fit_on_scenes(encoder, scenes, config, store=store, progress=progress)
    key = {"encoder": encoder.id, "encoder_code": encoder.code_id, "control": control.id if control else None,
           "pool": scenes.pool.fingerprint(), "seen": scenes.seen.fingerprint(), "n_probe": n_probe,
           "pixels": pixels, "directions": directions, "labclip": asdict(config),
           "code": code_digest("labclip_utils.diagnosis")}

    def compute() -> dict:
        return _numbers(scenes, pool, seen, control, store, fit, n_probe, pixels, directions, progress)

    numbers, _ = cached_json(store.root, "diagnoses", key, compute)
    pair = {name: SplitScores(**value) for name, value in numbers.pop("scores").items()}
    return Diagnosis(chance=numbers["chance"], probes={k: SplitScores(**v) for k, v in numbers["probes"].items()},
                     fit=fit, embeddings={"pool": pool, "seen": seen}, **pair)


def _numbers(scenes: EvalScenes, pool: SceneEmbeddings, seen: SceneEmbeddings, control: Encoder | None,
             store: EmbeddingStore, fit: FitResult, n_probe: int, pixels: bool, directions: bool,
             progress: bool) -> dict:
    train, test = pool.select("train"), pool.select("test")
    train_ds, test_ds = scenes.pool.select("train"), scenes.heldout()
    probe_ds = train_ds.head(n_probe)
    k = len(probe_ds)
    sets = {"seen": (seen, scenes.seen), "heldout": (test, test_ds)}
    probes: dict[str, dict[str, float]] = {}

    def probe(label: str, train_x, seen_x, held_x) -> None:
        probes[label] = object_probe(train_x, probe_ds, {"seen": (seen_x, scenes.seen), "heldout": (held_x, test_ds)})

    probe("image emb.", train.images[:k], seen.images, test.images)
    probe("text emb.", train.captions[:k], seen.captions, test.captions)
    probe("bag of words", probe_ds.bag_of_concepts(), scenes.seen.bag_of_concepts(), test_ds.bag_of_concepts())
    probe("bag of bigrams (text)", bag_of_bigrams(probe_ds), bag_of_bigrams(scenes.seen), bag_of_bigrams(test_ds))
    if control is not None:
        c_pool = embed_scenes(control, scenes.pool, store=store, progress=progress)
        c_seen = embed_scenes(control, scenes.seen, store=store, progress=progress)
        c_train, c_test = c_pool.select("train"), c_pool.select("test")
        probe("random-init image", c_train.images[:k], c_seen.images, c_test.images)
        probe("random-init text", c_train.captions[:k], c_seen.captions, c_test.captions)
    if pixels:
        probe("raw pixels (8×8)", *(pixel_features(d.images()) for d in (probe_ds, scenes.seen, test_ds)))
    scores: dict[str, dict[str, float]] = {name: {} for name in (
        "swap", "swap_after", "retrieval", "retrieval_after", "gap", "gap_after", "probe_cos", "probe_cos_after",
        "binding_cos", "binding_cos_after")}
    A = fit.map
    for split, (e, ds) in sets.items():
        mapped, mapped_neg = A.map_texts(e.captions), A.map_texts(e.negatives)
        relevant = torch.as_tensor(ds.same_combination())
        scores["swap"][split] = swap_accuracy(e.images, e.captions, e.negatives)
        scores["swap_after"][split] = swap_accuracy(e.images, mapped, mapped_neg)
        scores["retrieval"][split] = retrieval(e.images, e.captions, relevant)["i2t_R@1"]
        scores["retrieval_after"][split] = retrieval(e.images, mapped, relevant)["i2t_R@1"]
        scores["gap"][split] = centroid_gap(e.images, e.captions)
        scores["gap_after"][split] = centroid_gap(e.images, mapped)
        nan = float("nan")
        k3 = min(3000, len(ds))
        probes_too = directions and split == "seen"
        scores["probe_cos"][split] = probe_direction_cosine(e.images[:k3], e.captions[:k3], ds.head(k3),
                                                            C=PROBE_COS_C) if probes_too else nan
        scores["probe_cos_after"][split] = probe_direction_cosine(e.images[:k3], mapped[:k3], ds.head(k3),
                                                                  C=PROBE_COS_C) if probes_too else nan
        scores["binding_cos"][split] = binding_direction_cosine(e.images, e.captions, ds) if directions else nan
        scores["binding_cos_after"][split] = binding_direction_cosine(e.images, mapped, ds) if directions else nan
    return {"chance": chance_accuracy(train_ds), "scores": scores, "probes": probes}
