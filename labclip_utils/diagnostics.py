"""The paper's whole diagnosis of one encoder, in one call: swap test, probes with controls, LABCLIP, gap.

Used by the miniature's chapter and by ``benchmarks/miniature.py`` so both report the same numbers.
Held-out combinations are the compositional split's test combinations; "seen" scenes are new images of
training combinations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd
import torch

from labclip_utils.binding import retrieval, swap_accuracy
from labclip_utils.cache import cached_tensors
from labclip_utils.gap import centroid_gap
from labclip_utils.labclip import FitResult, Labclip, LabclipConfig, fit_labclip
from labclip_utils.models.encoder import Encoder
from labclip_utils.paper import beside_paper
from labclip_utils.probing import bag_of_words_features, chance_accuracy, object_probe, pixel_features
from labclip_utils.scenes import make_scenes
from labclip_utils.scenes.dataset import SceneDataset
from labclip_utils.store import EmbeddingStore, SceneEmbeddings, embed_scenes

SPLITS = ("seen", "heldout")
SPLIT_LABELS = {"seen": "seen combinations", "heldout": "held-out combinations"}


@dataclass
class EvalScenes:
    """Scenes for a diagnosis: ``pool`` (compositional split: fit probes and A on train, select on val, test on
    test) and ``seen`` (fresh images of training combinations)."""

    pool: SceneDataset
    seen: SceneDataset


def evaluation_scenes(seed: int = 0, n_pool: int = 12_000, n_seen: int = 3_000, image_size: int = 64,
                      **scene_kwargs) -> EvalScenes:
    """2-object CLEVR-like evaluation scenes, drawn independently of any training scenes."""
    pool = make_scenes(n_pool, "clevr", 2, seed=20_000 + seed, image_size=image_size, **scene_kwargs)
    seen = make_scenes(n_seen, "clevr", 2, seed=30_000 + seed, image_size=image_size, **scene_kwargs)
    return EvalScenes(pool, seen.select("train"))


@dataclass
class Diagnosis:
    """Every number of the diagnosis (``numbers``), the fitted LABCLIP map and the embeddings it used."""

    numbers: dict[str, float]
    labclip: FitResult
    embeddings: dict[str, SceneEmbeddings]

    def probe_table(self) -> pd.DataFrame:
        """Probe accuracies: rows are features (embeddings and controls), columns seen / held-out scenes."""
        rows = {"image emb.": "image", "text emb.": "text", "bag of words": "bow",
                "random-init image": "random_image", "random-init text": "random_text", "raw pixels (8×8)": "pixels"}
        rows = {label: key for label, key in rows.items() if f"{key}_probe_seen" in self.numbers}
        table = pd.DataFrame({s: [self.numbers[f"{k}_probe_{s}"] for k in rows.values()] for s in SPLITS},
                             index=pd.Index(list(rows), name="features"))
        return table.rename(columns=SPLIT_LABELS)

    def summary_table(self) -> pd.DataFrame:
        """Swap test, retrieval and modality gap before and after LABCLIP, on seen and held-out scenes."""
        n = self.numbers
        rows = {"swap test, before": "swap_{}", "swap test, after LABCLIP": "swap_after_A_{}",
                "image→text R@1, before": "i2t_R@1_{}", "image→text R@1, after LABCLIP": "i2t_R@1_after_A_{}",
                "modality gap, before": "gap_{}", "modality gap, after LABCLIP": "gap_after_A_{}"}
        table = pd.DataFrame({s: [n[t.format(s)] for t in rows.values()] for s in SPLITS}, index=list(rows))
        return table.rename(columns=SPLIT_LABELS)

    def beside_paper(self) -> pd.DataFrame:
        """This diagnosis's held-out numbers next to the paper's CLEVR numbers (labelled with their sources)."""
        n = self.numbers
        ours = {("swap accuracy (test split)", "CLIP"): n["swap_heldout"],
                ("swap accuracy (test split)", "LABCLIP"): n["swap_after_A_heldout"],
                ("image probe (per-object colour)", "CLIP"): n["image_probe_heldout"],
                ("text probe (per-object colour)", "CLIP"): n["text_probe_heldout"]}
        return beside_paper(ours, setting_contains="CLEVR")


def diagnose(encoder: Encoder, scenes: EvalScenes, *, control: Encoder | None = None,
             store: EmbeddingStore | None = None, labclip: LabclipConfig | None = None,
             n_probe: int = 5000, pixels: bool = False, progress: bool = True) -> Diagnosis:
    """Swap test, probes (embedding, bag-of-words, random-init control, chance), LABCLIP and the modality gap.

    ``control`` is the same architecture with random init (for the random-init probe controls); ``pixels`` adds a
    probe on raw 8×8 pixels. The result is cached like embeddings (chapters that ask for the same diagnosis share
    one computation).
    """
    store = store or EmbeddingStore()
    config = labclip or LabclipConfig()
    pool = embed_scenes(encoder, scenes.pool, store=store, progress=progress)
    seen = embed_scenes(encoder, scenes.seen, store=store, progress=progress)
    key = {"version": "2", "encoder": encoder.id, "control": control.id if control else None,
           "pool": scenes.pool.fingerprint(), "seen": scenes.seen.fingerprint(), "n_probe": n_probe,
           "pixels": pixels, "labclip": asdict(config)}
    fit = fit_scene_labclip(encoder, scenes, config, store=store, progress=progress)

    def compute() -> dict[str, torch.Tensor]:
        out = _diagnosis(encoder, scenes, pool, seen, control, store, fit.model, n_probe, pixels, progress)
        return {f"number.{k}": torch.tensor(v, dtype=torch.float64) for k, v in out.items()}

    tensors, _ = cached_tensors(store.root, "diagnoses", key, compute)
    numbers = {k.removeprefix("number."): v.item() for k, v in tensors.items() if k.startswith("number.")}
    return Diagnosis(numbers, fit, {"pool": pool, "seen": seen})


def _diagnosis(encoder, scenes, pool, seen, control, store, A, n_probe, pixels, progress):
    tr, te = pool.select("train"), pool.select("test")
    tr_ds, te_ds = scenes.pool.select("train"), scenes.pool.select("test")
    probe_ds = tr_ds.head(n_probe)
    k = len(probe_ds)
    out: dict[str, float] = {"chance": chance_accuracy(tr_ds)}
    sets = {"seen": seen, "heldout": te}
    for name, e in sets.items():
        out[f"swap_{name}"] = swap_accuracy(e.images, e.captions, e.negatives)

    def probe(label: str, train_x, seen_x, held_x) -> None:
        res = object_probe(train_x, probe_ds, {"seen": (seen_x, scenes.seen), "heldout": (held_x, te_ds)})
        out.update({f"{label}_probe_{s}": v for s, v in res.items()})

    probe("image", tr.images[:k], seen.images, te.images)
    probe("text", tr.captions[:k], seen.captions, te.captions)
    probe("bow", bag_of_words_features(probe_ds), bag_of_words_features(scenes.seen), bag_of_words_features(te_ds))
    if pixels:
        probe("pixels", *(pixel_features(d.images()) for d in (probe_ds, scenes.seen, te_ds)))
    if control is not None:
        c_pool = embed_scenes(control, scenes.pool.select("train"), store=store, progress=progress)
        c_test = embed_scenes(control, te_ds, store=store, progress=progress)
        c_seen = embed_scenes(control, scenes.seen, store=store, progress=progress)
        probe("random_image", c_pool.images[:k], c_seen.images, c_test.images)
        probe("random_text", c_pool.captions[:k], c_seen.captions, c_test.captions)

    for name, e in sets.items():
        pos, neg = A.map_texts(e.captions), A.map_texts(e.negatives)
        out[f"swap_after_A_{name}"] = swap_accuracy(e.images, pos, neg)
        before, after = retrieval(e.images, e.captions, _same_scene(scenes, name)), retrieval(
            e.images, pos, _same_scene(scenes, name))
        out[f"i2t_R@1_{name}"], out[f"i2t_R@1_after_A_{name}"] = before["i2t_R@1"], after["i2t_R@1"]
        out[f"gap_{name}"], out[f"gap_after_A_{name}"] = centroid_gap(e.images, e.captions), centroid_gap(e.images, pos)
    return out


def _same_scene(scenes: EvalScenes, name: str) -> torch.Tensor:
    return same_combination(scenes.seen if name == "seen" else scenes.pool.select("test"))


def same_combination(ds: SceneDataset) -> torch.Tensor:
    """N×N: does caption ``j`` describe image ``i``'s combination? (For retrieval with repeated combinations.)"""
    keys = [tuple(sorted(p)) for p in ds.pairs]
    index = {k: i for i, k in enumerate(sorted(set(keys)))}
    ids = torch.tensor([index[k] for k in keys])
    return ids[:, None] == ids[None, :]


def swap_table(sets: dict[str, SceneEmbeddings], maps: dict[str, Labclip | None]) -> pd.DataFrame:
    """Swap accuracy of each text map (None: plain CLIP) on each set of embeddings; rows are models."""
    rows = {}
    for name, A in maps.items():
        rows[name] = {}
        for split, e in sets.items():
            pos, neg = (e.captions, e.negatives) if A is None else (A.map_texts(e.captions), A.map_texts(e.negatives))
            rows[name][split] = swap_accuracy(e.images, pos, neg)
    return pd.DataFrame(rows).T.rename_axis("model")


def encoder_swap(encoder: Encoder, datasets: dict[str, SceneDataset], store: EmbeddingStore | None = None,
                 progress: bool = False) -> dict[str, float]:
    """Swap accuracy of an encoder on each dataset (through the embedding cache)."""
    out = {}
    for name, ds in datasets.items():
        e = embed_scenes(encoder, ds, store=store, progress=progress)
        out[name] = swap_accuracy(e.images, e.captions, e.negatives)
    return out


def multi_object_curve(encoder: Encoder, control: Encoder | None = None, counts: tuple[int, ...] = (2, 3, 4, 5, 6),
                       n: int = 2000, seed: int = 0, image_size: int = 64, store: EmbeddingStore | None = None,
                       progress: bool = True) -> pd.DataFrame:
    """Multi-object probing: for each object count, soft-label top-k probes on image and text embeddings and on
    the controls (bag of words, random-init image embedding, chance), trained on the train split and tested on
    held-out combinations. One row per (objects, features)."""
    from labclip_utils.probing import multi_object_probe, topk_set_chance

    rows = []
    for k in counts:
        ds = make_scenes(n, "clevr", k, seed=50_000 + 100 * seed + k, image_size=image_size)
        tr_ds, te_ds = ds.select("train"), ds.select("test")
        tr, te = (embed_scenes(encoder, d, store=store, progress=progress) for d in (tr_ds, te_ds))
        feats = {"image emb.": (tr.images, te.images), "text emb.": (tr.captions, te.captions),
                 "bag of words": (bag_of_words_features(tr_ds), bag_of_words_features(te_ds))}
        if control is not None:
            c_tr, c_te = (embed_scenes(control, d, store=store, progress=progress) for d in (tr_ds, te_ds))
            feats["random-init image"] = (c_tr.images, c_te.images)
        for name, (a, b) in feats.items():
            acc = multi_object_probe(a, tr_ds, {"test": (b, te_ds)})["test"]
            rows.append({"objects": k, "features": name, "top-k set accuracy": acc})
        rows.append({"objects": k, "features": "chance", "top-k set accuracy": topk_set_chance(te_ds)})
    return pd.DataFrame(rows)


def fit_scene_labclip(encoder: Encoder, scenes: EvalScenes, config: LabclipConfig | None = None,
                      store: EmbeddingStore | None = None, progress: bool = True) -> FitResult:
    """LABCLIP's A fitted on the evaluation scenes' training combinations and selected on validation ones.

    Cached like embeddings (key: encoder, scenes, training settings), so the diagnosis and every chapter that
    needs this A share one fit.
    """
    store = store or EmbeddingStore()
    config = config or LabclipConfig()
    pool = embed_scenes(encoder, scenes.pool, store=store, progress=progress)
    key = {"version": "1", "encoder": encoder.id, "pool": scenes.pool.fingerprint(), "labclip": asdict(config)}

    def compute() -> dict[str, torch.Tensor]:
        train, val = pool.select("train"), pool.select("val")
        fit = fit_labclip((train.images, train.captions, train.negatives),
                          (val.images, val.captions, val.negatives), config, progress=progress)
        tensors = {f"history.{c}": torch.tensor(fit.history[c].astype(float).to_numpy()) for c in fit.history}
        return tensors | {"history.epoch": torch.tensor(fit.history.index.to_numpy()), "A.weight": fit.model.A.detach(),
                          "A.t": fit.model.t.detach(), "best_epoch": torch.tensor(fit.best_epoch),
                          "seconds": torch.tensor(fit.seconds)}

    tensors, _ = cached_tensors(store.root, "labclip_fits", key, compute)
    model = Labclip(tensors["A.weight"].shape[0])
    with torch.no_grad():
        model.linear.weight.copy_(tensors["A.weight"])
        model.t.copy_(tensors["A.t"])
    history = pd.DataFrame({k.removeprefix("history."): v.numpy() for k, v in tensors.items()
                            if k.startswith("history.") and k != "history.epoch"},
                           index=pd.Index(tensors["history.epoch"].numpy(), name="epoch"))
    return FitResult(model.eval(), history, int(tensors["best_epoch"]), config, float(tensors["seconds"]))
