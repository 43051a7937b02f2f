"""The one-call diagnosis: typed results, and cached so that chapters share one computation."""

from __future__ import annotations

import torch

from labclip_utils.diagnosis import PROBE_LABELS, Diagnosis, SplitScores, diagnose
from labclip_utils.evaluation import evaluate, result
from labclip_utils.labclip import LabclipConfig, fit_on_scenes
from labclip_utils.paper import PAPER_COLUMN, paper_value
from labclip_utils.scenes import evaluation_scenes
from labclip_utils.store import EmbeddingStore
from labclip_utils.tasks import swap_task


def test_diagnosis_typed_tables_and_cache(tiny_encoder, tmp_path):
    scenes = evaluation_scenes(seed=0, n_pool=600, n_seen=200, image_size=32)
    store = EmbeddingStore(tmp_path)
    config = LabclipConfig(epochs=3)
    first = diagnose(tiny_encoder, scenes, store=store, config=config, n_probe=300, progress=False)
    assert isinstance(first, Diagnosis) and isinstance(first.swap, SplitScores)
    assert first.chance == 1 / 8 and set(first.probes) == {"image emb.", "text emb.", "bag of words",
                                                               "bag of bigrams (text)"}
    assert list(first.probe_table().columns) == ["seen combinations", "held-out combinations"]
    assert list(first.probe_table().index) == [p for p in PROBE_LABELS if p in first.probes]
    assert first.summary_table().shape == (8, 2)
    assert first.probes["bag of bigrams (text)"].heldout == 1.0  # word adjacency alone binds in text
    assert len(list((tmp_path / "diagnoses").glob("*.safetensors"))) == 1
    again = diagnose(tiny_encoder, scenes, store=store, config=config, n_probe=300, progress=False)
    assert again.swap == first.swap and again.probes == first.probes
    assert torch.equal(again.fit.map.A, first.fit.map.A) and again.fit.kept_epoch == first.fit.kept_epoch == 3
    # the diagnosis's A is the shared, cached scene fit: chapters asking for it get the same matrix, fitted once
    shared = fit_on_scenes(tiny_encoder, scenes, config, store=store, progress=False)
    assert torch.equal(shared.map.A, first.fit.map.A)
    assert len(list((tmp_path / "labclip_fits").glob("*.safetensors"))) == 1
    # the same numbers come out of the evaluation runner every chapter uses
    table = evaluate(tiny_encoder, swap_task(scenes.seen), {"CLIP": None, "LABCLIP": shared.map}, store=store,
                     progress=False)
    assert result(table, "CLIP") == first.swap.seen
    assert abs(result(table, "LABCLIP") - first.swap_after.seen) < 1e-9
    # beside the paper: the paper's values come from its table of real CLIP numbers, in a column that says so, with
    # their source whole; the tiny encoder's own numbers sit in their own column (nothing ties the two)
    beside = first.beside_paper()
    row = ("CLEVR", "swap accuracy (test split)", "CLIP")
    assert beside.loc[row, PAPER_COLUMN] == paper_value(setting="CLEVR", metric="swap accuracy (test split)",
                                                        model="CLIP")
    assert PAPER_COLUMN == "paper (real CLIP)" and beside.loc[row, "this book"] == round(first.swap.heldout, 3)
    assert beside.loc[row, "source"].startswith("NOTE: an AI-written summary of the paper")
    assert beside.loc[row, "source"].endswith("PDF")  # shown whole, not cut off


def test_same_combination_marks_duplicates():
    scenes = evaluation_scenes(seed=0, n_pool=50, n_seen=50)
    rel = scenes.seen.same_combination()
    assert rel.diagonal().all() and (rel == rel.T).all()
