"""The one-call diagnosis: every number present, and cached so that chapters share one computation."""

from __future__ import annotations

import torch

from labclip_utils.diagnostics import diagnose, evaluation_scenes, fit_scene_labclip, same_combination, swap_table
from labclip_utils.labclip import LabclipConfig
from labclip_utils.store import EmbeddingStore


def test_diagnosis_numbers_tables_and_cache(tiny_encoder, tmp_path):
    scenes = evaluation_scenes(seed=0, n_pool=600, n_seen=200)
    store = EmbeddingStore(tmp_path)
    first = diagnose(tiny_encoder, scenes, store=store, labclip=LabclipConfig(epochs=3), n_probe=300,
                     progress=False)
    for key in ("swap_seen", "swap_heldout", "image_probe_heldout", "bow_probe_seen", "swap_after_A_seen",
                "i2t_R@1_heldout", "gap_after_A_heldout", "chance"):
        assert key in first.numbers
    assert first.numbers["chance"] == 1 / 8
    assert list(first.probe_table().columns) == ["seen combinations", "held-out combinations"]
    assert first.summary_table().shape == (6, 2)
    assert len(list((tmp_path / "diagnoses").glob("*.safetensors"))) == 1
    again = diagnose(tiny_encoder, scenes, store=store, labclip=LabclipConfig(epochs=3), n_probe=300,
                     progress=False)
    assert again.numbers == first.numbers
    assert torch.equal(again.labclip.model.A, first.labclip.model.A)
    assert again.labclip.best_epoch == first.labclip.best_epoch
    # the diagnosis's A is the shared, cached scene fit: chapters asking for it get the same matrix, fitted once
    shared = fit_scene_labclip(tiny_encoder, scenes, LabclipConfig(epochs=3), store=store, progress=False)
    assert torch.equal(shared.model.A, first.labclip.model.A)
    assert len(list((tmp_path / "labclip_fits").glob("*.safetensors"))) == 1
    table = swap_table({"seen": again.embeddings["seen"]}, {"CLIP": None, "LABCLIP": again.labclip.model})
    assert table.loc["CLIP", "seen"] == first.numbers["swap_seen"]
    assert abs(table.loc["LABCLIP", "seen"] - first.numbers["swap_after_A_seen"]) < 1e-9


def test_same_combination_marks_duplicates():
    scenes = evaluation_scenes(seed=0, n_pool=50, n_seen=50)
    rel = same_combination(scenes.seen)
    assert rel.diagonal().all() and rel.equal(rel.T)
