"""Binding metrics, probes and the modality gap on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labclip_utils.binding import caption_set_retrieval, recall_at_k, retrieval, swap_accuracy
from labclip_utils.gap import centroid_gap
from labclip_utils.probing import bag_of_words_features, chance_accuracy, object_probe, pixel_features
from labclip_utils.scenes import make_scenes


def test_swap_accuracy_tie_rules_and_missing_negatives():
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.5, 0.5]])
    neg = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.6, -0.8], [float("nan"), float("nan")]])
    # scores: row0 1>0 win, row1 0<1 loss, row2 0.6==0.6 tie, row3 no negative (left out)
    assert swap_accuracy(images, pos, neg) == pytest.approx(1 / 3)
    assert swap_accuracy(images, pos, neg, ties="correct") == pytest.approx(2 / 3)
    assert swap_accuracy(images, pos, neg, ties="half") == pytest.approx(1.5 / 3)
    with pytest.raises(ValueError, match="tie rule"):
        swap_accuracy(images, pos, neg, ties="maybe")
    with pytest.raises(ValueError, match="no row"):
        swap_accuracy(images[3:], pos[3:], neg[3:])


def test_recall_at_k_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])
    relevant = torch.eye(3, dtype=torch.bool)
    # row0: top1 col0 (hit); row1: order 2,1,0 -> hit at rank 2; row2: order 0,1,2 -> miss until rank 3
    assert recall_at_k(scores, relevant, ks=(1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    with pytest.raises(ValueError, match="shape"):
        recall_at_k(scores, relevant[:2])


def test_retrieval_both_directions_and_caption_set():
    emb = F.normalize(torch.randn(20, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    perfect = retrieval(emb, emb)
    assert perfect["i2t_R@1"] == 1.0 and perfect["t2i_R@1"] == 1.0
    captions = torch.eye(4)
    images = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    out = caption_set_retrieval(images, captions, true_index=torch.tensor([1, 3]), swap_index=torch.tensor([2, 0]),
                                ks=(1, 4))
    assert out["i2t_R@1"] == 0.5 and out["i2t_R@4"] == 1.0 and out["reverse_R@1"] == 0.5


def test_centroid_gap():
    x = F.normalize(torch.randn(50, 4), dim=-1)
    assert centroid_gap(x, x.clone()) == pytest.approx(0.0, abs=1e-7)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert centroid_gap(a, b) == pytest.approx(2**0.5)


def test_probes_bound_features_near_one_bag_of_words_near_half():
    ds = make_scenes(3000, "clevr", 2, seed=0)
    tr, te = ds.select("train"), ds.select("test")

    def bound(d):  # one-hot (shape, colour) conjunctions: binding is linearly readable
        x = np.zeros((len(d), len(d.objects) * len(d.attributes)), dtype=np.float32)
        for i, pairs in enumerate(d.pairs):
            for c, o in pairs:
                x[i, d.objects.index(o) * len(d.attributes) + d.attributes.index(c)] = 1
        return x

    res = object_probe(bound(tr), tr, {"test": (bound(te), te)})
    assert res["test"] > 0.97
    bow = object_probe(bag_of_words_features(tr), tr, {"test": (bag_of_words_features(te), te)})
    assert 0.35 < bow["test"] < 0.62  # two colours present, the probe cannot tell which is the cube's
    assert chance_accuracy(tr) == 1 / 8
    assert pixel_features(te.images()[:3]).shape == (3, 8 * 8 * 3)
    with pytest.raises(ValueError, match="feature rows"):
        object_probe(bound(tr)[:10], tr, {"test": (bound(te), te)})
