"""LABCLIP: the loss as the paper's code defines it, the trainer, and saving/loading A."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from labclip_utils.labclip import (
    LabclipConfig,
    LabclipMap,
    fit_labclip,
    hard_negative_loss,
    load_labclip,
    save_labclip,
    symmetric_loss,
)
from labclip_utils.metrics import swap_accuracy


def _norm(x):
    return F.normalize(x, dim=-1)


def test_hard_negative_loss_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    img, pos, neg = (_norm(torch.randn(4, 6, generator=g)) for _ in range(3))
    scale = torch.tensor(3.0)
    texts = torch.cat([pos, neg])
    i2t = 0.0
    for i in range(4):  # each image against all 8 texts, target its own positive
        logits = [scale * img[i] @ t for t in texts]
        i2t += -(logits[i] - torch.logsumexp(torch.stack(logits), 0))
    t2i = 0.0
    for j in range(4):  # each positive text against the 4 images only
        logits = [scale * img[i] @ pos[j] for i in range(4)]
        t2i += -(logits[j] - torch.logsumexp(torch.stack(logits), 0))
    expected = 0.5 * (i2t / 4 + t2i / 4)
    assert hard_negative_loss(img, pos, neg, scale).item() == pytest.approx(expected.item(), rel=1e-5)
    sym = symmetric_loss(img, pos, scale)
    assert sym.item() == pytest.approx(0.5 * (F.cross_entropy(scale * img @ pos.T, torch.arange(4))
                                              + F.cross_entropy(scale * pos @ img.T, torch.arange(4))).item())


def test_loss_on_a_two_by_four_toy_batch():
    """B = 2 images, 4 texts (2 positives, 2 hard negatives), logit scale 1, worked out by hand."""
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    neg = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # logits rows: image 0 -> [1, 0, 0, 1], image 1 -> [0, 1, 1, 0]; each picks its own positive among 4
    i2t = -math.log(math.e / (2 * math.e + 2))
    # t2i over the 2 positives only: logits [[1, 0], [0, 1]]
    t2i = -math.log(math.e / (math.e + 1))
    expected = 0.5 * (i2t + t2i)
    assert hard_negative_loss(img, pos, neg, torch.tensor(1.0)).item() == pytest.approx(expected, rel=1e-6)


def test_map_starts_at_identity_and_paper_temperature():
    m = LabclipMap(5)
    x = torch.randn(3, 5)
    assert torch.allclose(m.map_texts(x), _norm(x))
    assert m.logit_scale.item() == pytest.approx(1.0)  # t = 0 as in the paper's code
    assert LabclipMap(5, init_logit_scale=100).t.item() == pytest.approx(math.log(100))


def _synthetic(n: int, seed: int):
    """Images carry a binding code c; captions carry it permuted (R c, R swapping dims 0↔1 and 2↔3), and the
    negative carries -R c. Under the identity c·Rc is symmetric around 0, so the swap test is at chance; a
    linear A (R^T on those dims) fixes it."""
    g = torch.Generator().manual_seed(seed)
    bow = torch.randn(n, 8, generator=g)
    code = torch.randn(n, 4, generator=g)
    rot = torch.eye(4)[[1, 0, 3, 2]]
    img = _norm(torch.cat([bow, code], 1))
    pos = _norm(torch.cat([bow, 0.5 * code @ rot.T], 1))
    neg = _norm(torch.cat([bow, -0.5 * code @ rot.T], 1))
    return img, pos, neg


def test_fit_fixes_a_linearly_fixable_swap_and_keeps_the_last_epoch():
    train, val, test = _synthetic(2000, 0), _synthetic(500, 1), _synthetic(500, 2)
    before = swap_accuracy(*test)
    fit = fit_labclip(train, val, LabclipConfig(epochs=15), progress=False)
    m = fit.map
    after = swap_accuracy(test[0], m.map_texts(test[1]), m.map_texts(test[2]))
    assert 0.35 < before < 0.65 and after > 0.95
    assert fit.kept_epoch == 15, "the paper's code keeps the last epoch"
    assert list(fit.history.columns[:3]) == ["loss", "logit_scale", "seconds"]
    # 2000 rows in batches of 128: 15 full batches and the partial one (the paper's DataLoader keeps it)
    assert fit.history["steps"].iloc[0] == 16
    again = fit_labclip(train, val, LabclipConfig(epochs=15), progress=False)
    assert torch.equal(again.map.A, m.A), "same seed, same A"
    best = fit_labclip(train, val, LabclipConfig(epochs=15, keep="best_val", drop_last=True), progress=False)
    assert best.kept_epoch == int(best.history["val_swap"].idxmax()) and best.history["steps"].iloc[0] == 15
    with pytest.raises(ValueError, match="needs a validation set"):
        fit_labclip(train, None, LabclipConfig(keep="best_val"), progress=False)


def test_sb_ablation_runs_and_rows_without_negative_are_dropped():
    img, pos, neg = _synthetic(300, 0)
    neg[:10] = float("nan")
    fit = fit_labclip((img, pos, neg), None, LabclipConfig(loss="sb", epochs=2), progress=False)
    assert fit.kept_epoch == 2 and "val_swap" not in fit.history
    with pytest.raises(ValueError, match="unknown loss"):
        LabclipConfig(loss="xyz")


def test_save_load_round_trip_and_bad_file(tmp_path):
    m = LabclipMap(4)
    with torch.no_grad():
        m.linear.weight.add_(0.1)
        m.t.fill_(2.0)
    path = save_labclip(tmp_path / "a.safetensors", m, encoder="miniature/seed0/abc", data="clevr-2obj")
    back, meta = load_labclip(path)
    assert torch.equal(back.A, m.A) and back.t.item() == 2.0
    texts = torch.randn(6, 4)
    assert torch.equal(back.map_texts(texts), m.map_texts(texts)), "identical scores after loading"
    with pytest.raises(ValueError, match=r"a.safetensors: A is 4×4 but the embeddings have D=512"):
        load_labclip(path, expected_dim=512)
    assert meta == {"format": "labclip-1", "dim": 4, "encoder": "miniature/seed0/abc", "data": "clevr-2obj"}
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="bad.safetensors: not a LABCLIP map"):
        load_labclip(tmp_path / "bad.safetensors")


def test_one_training_step_serves_every_loop():
    """The in-memory fit, the streamed fit and CLIP-FT step through the same function (loss, step, divergence check):
    none of them clears, back-propagates or applies gradients itself."""
    import inspect

    from labclip_utils.finetune import finetune_clip
    from labclip_utils.labclip import fit_labclip
    from labclip_utils.streaming import fit_streaming

    for fit in (fit_labclip, fit_streaming, finetune_clip):
        source = inspect.getsource(fit)
        assert "train_step(" in source and "labclip_loss(" in source and "check_finite(" in source, fit.__name__
        assert ".backward(" not in source and "zero_grad" not in source, fit.__name__


def test_the_shared_step_and_its_checks():
    from labclip_utils.labclip import LabclipMap, check_finite, labclip_loss, train_step

    torch.manual_seed(0)
    labclip_map = LabclipMap(4)
    opt = torch.optim.SGD(labclip_map.parameters(), lr=0.1)
    images, pos, neg = (torch.nn.functional.normalize(torch.randn(8, 4), dim=-1) for _ in range(3))
    loss = labclip_loss("hnb", images, labclip_map(pos), labclip_map(neg), labclip_map.logit_scale)
    value = train_step(opt, loss)
    assert value == loss.item() and not torch.equal(labclip_map.A, torch.eye(4)), "one step moved A"
    sb = labclip_loss("sb", images, labclip_map(pos), None, labclip_map.logit_scale)
    assert torch.isfinite(sb)
    with pytest.raises(ValueError, match="hard negatives"):
        labclip_loss("hnb", images, labclip_map(pos), None, labclip_map.logit_scale)
    check_finite(labclip_map)
    with torch.no_grad():
        labclip_map.linear.weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="diverged"):
        check_finite(labclip_map)
