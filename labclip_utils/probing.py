"""Unimodal probes: can a linear classifier read *which colour each object has* from a frozen embedding?

For each object type (cube, sphere, ...) an independent logistic regression predicts that object's colour from
the embedding of scenes (or captions) that contain it; the reported number is the mean test accuracy over object
types, as in the paper. Controls share the same function: bag-of-words features (which colours and shapes are
present, nothing bound: the ceiling for unbound information; :meth:`SceneDataset.bag_of_concepts`), a random-init
encoder, raw pixels, and chance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labclip_utils.scenes import make_scenes
from labclip_utils.scenes.dataset import SceneDataset
from labclip_utils.scenes.splits import bag_key
from labclip_utils.store import embed_scenes


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def object_probe(
    train_x, train_ds: SceneDataset, tests: Mapping[str, tuple[object, SceneDataset]],
    objects: Sequence[str] | None = None, seed: int = 0,
) -> dict[str, float]:
    """Fit one colour probe per object type on ``train_x`` and score it on each test set.

    Returns, per test set, the mean over object types of the probe's accuracy (StandardScaler + logistic
    regression). Rows of each feature matrix are the scenes of its dataset, in order.
    """
    train_x = _as_numpy(train_x)
    if len(train_x) != len(train_ds):
        raise ValueError(f"{len(train_x)} feature rows for {len(train_ds)} training scenes")
    tests = {name: (_as_numpy(x), ds) for name, (x, ds) in tests.items()}
    for name, (x, ds) in tests.items():
        if len(x) != len(ds):
            raise ValueError(f"test set {name!r}: {len(x)} feature rows for {len(ds)} scenes")
    scores: dict[str, list[float]] = {name: [] for name in tests}
    for obj in objects or train_ds.objects:
        tr = [(i, c) for i, p in enumerate(train_ds.pairs) for c, o in p if o == obj]
        if len({c for _, c in tr}) < 2:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
        clf.fit(train_x[[i for i, _ in tr]], [c for _, c in tr])
        for name, (x, ds) in tests.items():
            te = [(i, c) for i, p in enumerate(ds.pairs) for c, o in p if o == obj]
            if te:
                scores[name].append(clf.score(x[[i for i, _ in te]], [c for _, c in te]))
    empty = [name for name, v in scores.items() if not v]
    if empty:
        raise ValueError(f"no object type occurs in both the training scenes and test set(s) {empty}")
    return {name: float(np.mean(v)) for name, v in scores.items()}


def bag_of_bigrams(ds: SceneDataset) -> np.ndarray:
    """Which pairs of neighbouring words each caption contains ("red cube", "cube and"...): word order kept only
    between neighbours. In these captions an attribute's noun is its neighbour, so these features hold the binding;
    the text probes' "what word order alone gives" control."""
    vocab = sorted(set(ds.attributes) | set(ds.objects) | {"a", "an", "and"})
    index = {w: i for i, w in enumerate(vocab)}
    x = np.zeros((len(ds), len(vocab) ** 2), dtype=np.float32)
    for i, caption in enumerate(ds.captions):
        words = caption.split()
        for first, second in zip(words, words[1:], strict=False):
            x[i, index[first] * len(vocab) + index[second]] = 1
    return x


def pixel_features(images: np.ndarray, size: int = 8) -> np.ndarray:
    """Images average-pooled to ``size``×``size`` RGB: what a probe gets from raw pixels."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    return F.adaptive_avg_pool2d(x, size).flatten(1).numpy()


def chance_accuracy(ds: SceneDataset) -> float:
    """Accuracy of guessing a colour uniformly: 1 / number of colours."""
    return 1.0 / len(ds.attributes)


def binding_direction_cosine(image_x, text_x, ds: SceneDataset) -> float:
    """Do the two modalities move the same way when only the binding changes?

    For every bag of words that occurs with both of its bindings ("red cube, blue sphere" and "blue cube, red
    sphere"), take the direction from the mean embedding of one binding to that of the other, in image space and in
    text space, and return the mean cosine between the two directions. The bag of words is the same on both ends, so
    only binding is compared. A cross-modal bag of words gives about 0; a shared binding direction gives more.
    """
    from collections import defaultdict

    image_x, text_x = _as_numpy(image_x), _as_numpy(text_x)
    groups: dict = defaultdict(lambda: defaultdict(list))
    for i, pairs in enumerate(ds.pairs):
        groups[bag_key(pairs)][tuple(sorted(pairs))].append(i)
    cosines = []
    for bindings in groups.values():
        if len(bindings) != 2:
            continue
        (_, first), (_, second) = sorted(bindings.items())
        d_image = image_x[first].mean(0) - image_x[second].mean(0)
        d_text = text_x[first].mean(0) - text_x[second].mean(0)
        norm = np.linalg.norm(d_image) * np.linalg.norm(d_text)
        if norm > 0:
            cosines.append(float(d_image @ d_text / norm))
    if not cosines:
        raise ValueError(f"{ds.name}: no bag of words occurs with both of its bindings")
    return float(np.mean(cosines))


def probe_direction_cosine(image_x, text_x, ds: SceneDataset, objects: Sequence[str] | None = None,
                           seed: int = 0, C: float = 1.0) -> float:
    """How much the image and text probes agree on *where* binding lives in the shared space.

    For each object type, one colour probe is fitted on the image embeddings and one on the caption embeddings
    of the same scenes, without rescaling, so both weight vectors live in the shared embedding space. The result
    is the mean cosine between the two probes' weight vectors over all (object, colour) classes. The paper reports
    it rising from 0.20 to 0.75 on CLEVR when the text side goes through A. The weight vectors depend on the
    regularisation ``C``: with strong regularisation a probe points along the class-mean difference, which for
    "the cube is red" is mostly the unbound "red is present" direction; weak regularisation (large ``C``) leaves
    the binding-specific direction that A is fitted to align.
    """
    image_x, text_x = _as_numpy(image_x), _as_numpy(text_x)
    cosines = []
    for obj in objects or ds.objects:
        rows = [(i, c) for i, p in enumerate(ds.pairs) for c, o in p if o == obj]
        labels = [c for _, c in rows]
        if len(set(labels)) < 2:
            continue
        idx = [i for i, _ in rows]
        w_img = LogisticRegression(max_iter=3000, C=C, random_state=seed).fit(image_x[idx], labels).coef_
        w_txt = LogisticRegression(max_iter=3000, C=C, random_state=seed).fit(text_x[idx], labels).coef_
        w_img = w_img / np.linalg.norm(w_img, axis=1, keepdims=True)
        w_txt = w_txt / np.linalg.norm(w_txt, axis=1, keepdims=True)
        cosines.extend((w_img * w_txt).sum(axis=1).tolist())
    if not cosines:
        raise ValueError(f"{ds.name}: no object type with two or more colours to probe")
    return float(np.mean(cosines))


def soft_colour_targets(ds: SceneDataset, obj: str) -> tuple[list[int], np.ndarray]:
    """Scenes containing ``obj`` and, for each, the share of its ``obj`` instances with each colour (the paper's
    soft labels for multi-object probing: a red cube and a blue cube give 0.5 / 0.5)."""
    colours = {c: i for i, c in enumerate(ds.attributes)}
    rows, targets = [], []
    for i, pairs in enumerate(ds.pairs):
        mine = [c for c, o in pairs if o == obj]
        if mine:
            t = np.zeros(len(colours), dtype=np.float32)
            for c in mine:
                t[colours[c]] += 1 / len(mine)
            rows.append(i)
            targets.append(t)
    return rows, np.asarray(targets)


def multi_object_probe(train_x, train_ds: SceneDataset, tests: Mapping[str, tuple[object, SceneDataset]],
                       epochs: int = 150, lr: float = 0.08, seed: int = 0) -> dict[str, float]:
    """The paper's multi-object probe: per object type, a linear layer trained with cross-entropy against soft
    colour targets; a test scene counts as correct when the top-k predicted colours are exactly its k distinct
    colours for that object. Mean over object types, per test set."""
    train_x = torch.as_tensor(_as_numpy(train_x), dtype=torch.float32)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    scores: dict[str, list[float]] = {name: [] for name in tests}
    for obj in train_ds.objects:
        rows, targets = soft_colour_targets(train_ds, obj)
        if len(rows) < 10:
            continue
        torch.manual_seed(seed)
        layer = torch.nn.Linear(train_x.shape[1], len(train_ds.attributes))
        opt = torch.optim.Adam(layer.parameters(), lr=lr, weight_decay=1e-4)
        x, q = (train_x[rows] - mean) / std, torch.from_numpy(targets)
        for _ in range(epochs):
            loss = -(q * torch.log_softmax(layer(x), dim=-1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            for name, (tx, ds) in tests.items():
                t_rows, t_targets = soft_colour_targets(ds, obj)
                if not t_rows:
                    continue
                logits = layer((torch.as_tensor(_as_numpy(tx), dtype=torch.float32)[t_rows] - mean) / std)
                scores[name].append(_topk_set_accuracy(logits, torch.from_numpy(t_targets)))
    return {name: float(np.mean(v)) if v else float("nan") for name, v in scores.items()}


def _topk_set_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    k = (targets > 0).sum(-1)
    order = logits.argsort(dim=-1, descending=True)
    hits = [set(order[i, : k[i]].tolist()) == set(targets[i].nonzero().flatten().tolist()) for i in range(len(k))]
    return float(np.mean(hits))


def topk_set_chance(ds: SceneDataset) -> float:
    """Chance level of the top-k set accuracy: the mean over (scene, object) of 1 / C(colours, k)."""
    from math import comb

    n = len(ds.attributes)
    values = [1 / comb(n, len({c for c, o in pairs if o == obj}))
              for pairs in ds.pairs for obj in {o for _, o in pairs}]
    return float(np.mean(values))


def multi_object_curve(encoder, control=None, counts: tuple[int, ...] = (2, 3, 4, 5, 6), n: int = 2000,
                       seed: int = 0, image_size: int = 64, store=None, progress: bool = True) -> pd.DataFrame:
    """Multi-object probing: for each object count, soft-label top-k probes on image and text embeddings and on
    the controls (bag of words, random-init image embedding, chance), trained on the train split and tested on
    held-out combinations. One row per (objects, features).

    With few scenes (a small ``n``), the held-out split can come out empty; the scene sequence is then extended
    (scene ``i`` is the same whatever ``n``) until at least ``max(10, n // 20)`` held-out scenes exist, and the
    training set keeps its ``n``-scene budget."""
    rows = []
    for k in counts:
        total = n
        while True:
            ds = make_scenes(total, "clevr", k, seed=50_000 + 100 * seed + k, image_size=image_size)
            tr_ds, te_ds = ds.select("train"), ds.select("test")
            if len(te_ds) >= min(max(10, n // 20), total) or total >= 64 * n:
                break
            total *= 2
        if len(te_ds) == 0 or len(tr_ds) == 0:
            raise ValueError(f"{ds.name}: {total} scenes of {k} objects leave no training or held-out scenes")
        tr_ds = tr_ds.head(max(n - len(te_ds), 1)) if total > n else tr_ds
        tr, te = (embed_scenes(encoder, d, store=store, progress=progress) for d in (tr_ds, te_ds))
        feats = {"image emb.": (tr.images, te.images), "text emb.": (tr.captions, te.captions),
                 "bag of words": (tr_ds.bag_of_concepts(), te_ds.bag_of_concepts())}
        if control is not None:
            c_tr, c_te = (embed_scenes(control, d, store=store, progress=progress) for d in (tr_ds, te_ds))
            feats["random-init image"] = (c_tr.images, c_te.images)
        for name, (a, b) in feats.items():
            acc = multi_object_probe(a, tr_ds, {"test": (b, te_ds)})["test"]
            rows.append({"objects": k, "features": name, "top-k set accuracy": acc})
        rows.append({"objects": k, "features": "chance", "top-k set accuracy": topk_set_chance(te_ds)})
    return pd.DataFrame(rows)
