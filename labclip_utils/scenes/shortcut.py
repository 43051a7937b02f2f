"""How PUG:SPAR's positional shortcut inflates a binding test, measured without looking at any image.

In ``spar`` the first-mentioned object always takes its colour from one set ({blue, green}) and the second from
another ({red, gray}). A swap negative written in the caption's own order ("mirror") breaks that pattern, so a
model that reads only the *caption* can tell the positive from the negative; the paper's negative (the caption
set with the objects swapped) keeps it. :func:`blind_swap_accuracy` fits such a caption-only model and runs the
swap test with it: a high score means the benchmark can be passed without binding anything to the image.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression

from labclip_utils.metrics import choice_credit
from labclip_utils.scenes.captions import Pair
from labclip_utils.scenes.dataset import SceneDataset


def _features(pairs: tuple[Pair, ...]) -> dict[str, float]:
    """Which attribute and which object is mentioned at each position of the caption (no image)."""
    feats: dict[str, float] = {}
    for k, (attribute, obj) in enumerate(pairs):
        feats[f"{k}:attr={attribute}"] = 1.0
        feats[f"{k}:obj={obj}"] = 1.0
    return feats


def blind_swap_accuracy(train: SceneDataset, test: SceneDataset, seed: int = 0) -> float:
    """Swap-test accuracy of a caption-only logistic regression (ties count one half).

    It is trained on ``train`` to tell captions from their hard negatives, then asked, for each ``test`` scene,
    which of the two captions is the true one. Chance is 0.5.
    """
    tr = [i for i, n in enumerate(train.negative_pairs) if n is not None and n != train.pairs[i]]
    te = [i for i, n in enumerate(test.negative_pairs) if n is not None and n != test.pairs[i]]
    if not tr or not te:
        raise ValueError("both datasets need scenes with hard negatives")
    vec = DictVectorizer()
    x = vec.fit_transform([_features(train.pairs[i]) for i in tr] + [_features(train.negative_pairs[i]) for i in tr])
    y = np.r_[np.ones(len(tr)), np.zeros(len(tr))]
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(x, y)
    pos = model.decision_function(vec.transform([_features(test.pairs[i]) for i in te]))
    neg = model.decision_function(vec.transform([_features(test.negative_pairs[i]) for i in te]))
    # decision values of equal feature vectors can differ in the last bits: round before comparing
    scores = np.round(np.stack([neg, pos], axis=1), 9)
    return float(choice_credit(scores, np.ones(len(te), dtype=np.int64), "half").mean())
