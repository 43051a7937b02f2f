"""Every metric, probe and gap measure on hand-made inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labclip_utils import metrics
from labclip_utils.gap import centroid_gap
from labclip_utils.metrics import caption_set_retrieval, recall_at_k, retrieval, swap_accuracy
from labclip_utils.probing import chance_accuracy, object_probe, pixel_features
from labclip_utils.scenes import make_scenes


def test_one_tie_vocabulary_for_every_choice_metric():
    scores = np.array([[0.2, 0.5], [0.5, 0.5], [0.6, 0.1]])
    answer = np.array([1, 1, 1])
    assert metrics.choice_correct(scores, answer, "strict").tolist() == [True, False, False]
    assert metrics.choice_correct(scores, answer, "correct").tolist() == [True, True, False]
    # argmax takes the first maximum: a tie goes to option 0, the false caption in ARO's VG layout
    assert metrics.choice_correct(scores, answer, "first").tolist() == [True, False, False]
    assert metrics.choice_correct(scores, np.array([0, 0, 0]), "first").tolist() == [False, True, True]
    assert metrics.choice_credit(scores, answer, "half").tolist() == [1.0, 0.5, 0.0]
    for bad in ("maybe", "first-ish"):
        with pytest.raises(ValueError, match="tie rule"):
            metrics.choice_credit(scores, answer, bad)
    with pytest.raises(ValueError, match="fractional"):
        metrics.choice_correct(scores, answer, "half")


def test_answers_and_scores_are_checked():
    scores = np.array([[0.2, 0.5], [0.5, 0.4]])
    with pytest.raises(ValueError, match=r"option indices in 0..1"):
        metrics.choice_credit(scores, np.array([1, 2]))
    with pytest.raises(ValueError, match="option indices"):
        metrics.choice_credit(scores, np.array([1, -1]))
    with pytest.raises(ValueError, match=r"NaN or infinite scores \(first: item 1\)"):
        metrics.choice_credit(np.array([[0.1, 0.2], [np.nan, 0.3]]), np.array([1, 1]))


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
    broken = images.clone()
    broken[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        swap_accuracy(broken, pos, neg)


def test_macro_and_micro_accuracy():
    correct = np.array([1, 0, 1, 1, 1, 0, 1])
    groups = ["a", "a", "b", "b", "b", "b", "c"]
    macro, per = metrics.macro_accuracy(correct, groups)
    assert macro == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert metrics.micro_accuracy(correct) == pytest.approx(5 / 7)
    # ARO's VG-A filter: only groups with at least min_count items
    macro2, per2 = metrics.macro_accuracy(correct, groups, min_count=2)
    assert macro2 == pytest.approx((0.5 + 0.75) / 2)
    assert per2.loc["c", "kept"] == False  # noqa: E712
    macro3, _ = metrics.macro_accuracy(correct, groups, exclude={"b"})
    assert macro3 == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no group"):
        metrics.macro_accuracy(correct, groups, min_count=10)


def test_recall_at_k_by_hand():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.7, 0.6, 0.1]])
    relevant = torch.eye(3, dtype=torch.bool)
    # row0: top1 col0 (hit); row1: order 2,1,0 -> hit at rank 2; row2: order 0,1,2 -> miss until rank 3
    assert recall_at_k(scores, relevant, ks=(1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}
    with pytest.raises(ValueError, match="shape"):
        recall_at_k(scores, relevant[:2])


def test_chunked_recalls_by_hand():
    images = torch.eye(3)
    texts = torch.tensor([[1.0, 0.8, 0], [0.1, 0, 0.95], [0, 0.7, 0], [0, 0.6, 0.5], [0, 0, 1], [0.9, 0.5, 0.1]])
    owner = torch.tensor([0, 0, 1, 1, 2, 2])
    # text→image ranks of the own image: 0, 1, 0, 0, 0, 2
    t2i = metrics.text_to_image_recall(images, texts, owner, ks=(1, 2, 3))
    assert t2i == pytest.approx({1: 4 / 6, 2: 5 / 6, 3: 1.0})
    # image→text: image 1's best caption is text 0 (0.8, image 0's), its own text 2 (0.7) comes second
    i2t = metrics.image_to_text_recall(images, texts, owner, ks=(1, 2))
    assert i2t == pytest.approx({1: 2 / 3, 2: 1.0})
    ranks = metrics.ranks_of_true(texts @ images.T, owner, chunk=4)
    assert ranks.tolist() == [0, 1, 0, 0, 0, 2]


def test_retrieval_both_directions_and_caption_set():
    emb = F.normalize(torch.randn(20, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    perfect = retrieval(emb, emb)
    assert perfect["i2t_R@1"] == 1.0 and perfect["t2i_R@1"] == 1.0
    captions = torch.eye(4)
    images = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    out = caption_set_retrieval(images, captions, true_index=torch.tensor([1, 3]), swap_index=torch.tensor([2, 0]),
                                ks=(1, 4))
    assert out["i2t_R@1"] == 0.5 and out["i2t_R@4"] == 1.0 and out["reverse_R@1"] == 0.5


def test_sugarcrepe_weighted_and_unweighted_means():
    acc = {"replace_obj": 0.9, "replace_att": 0.5, "swap_att": 0.6}
    counts = {"replace_obj": 10, "replace_att": 30, "swap_att": 5}
    table = metrics.sugarcrepe_summary(acc, counts)
    assert table.loc["replace", "weighted"] == pytest.approx((9 + 15) / 40)
    assert table.loc["replace", "unweighted"] == pytest.approx(0.7)
    assert table.loc["swap", "weighted"] == pytest.approx(0.6)
    assert "add" not in table.index
    # SugarCrepe's published ViT-B-32 row: weighted replace 80.76, unweighted 80.07 (its aggregate table)
    published = {"replace_obj": 90.92, "replace_att": 80.08, "replace_rel": 69.20}
    n = {"replace_obj": 1652, "replace_att": 788, "replace_rel": 1406}
    row = metrics.sugarcrepe_summary(published, n).loc["replace"]
    assert row["weighted"] == pytest.approx(80.76, abs=0.01)
    assert row["unweighted"] == pytest.approx(80.07, abs=0.01)


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
    bow = object_probe(tr.bag_of_concepts(), tr, {"test": (te.bag_of_concepts(), te)})
    assert 0.35 < bow["test"] < 0.62  # two colours present, the probe cannot tell which is the cube's
    assert chance_accuracy(tr) == 1 / 8
    assert pixel_features(te.images()[:3]).shape == (3, 8 * 8 * 3)
    with pytest.raises(ValueError, match="feature rows"):
        object_probe(bound(tr)[:10], tr, {"test": (bound(te), te)})
