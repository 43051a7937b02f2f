"""The one evaluation runner: encode-once, tidy tables, the same path for benchmark files and scenes in memory."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from labclip_utils.benchmarks import BENCHMARKS, load_benchmark, scene_tagger
from labclip_utils.benchmarks.offline import OfflineSizes, write_offline_benchmarks
from labclip_utils.evaluation import COLUMNS, choice_scores, encode_task, evaluate, result, save_results
from labclip_utils.labclip import LabclipMap
from labclip_utils.metrics import swap_accuracy
from labclip_utils.scenes import make_scenes
from labclip_utils.store import EmbeddingStore, embed_scenes
from labclip_utils.tasks import ChoiceTask, ImageRef, swap_task


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return write_offline_benchmarks(tmp_path_factory.mktemp("bench"), image_size=32, sizes=OfflineSizes.tiny())


def test_runner_encodes_each_unique_image_and_caption_once(fixtures, tiny_encoder, tmp_path, monkeypatch):
    task = load_benchmark("sugarcrepe", fixtures)
    loads = []
    original = ImageRef.load
    monkeypatch.setattr(ImageRef, "load", lambda self: loads.append(self.path) or original(self))
    store = EmbeddingStore(root=tmp_path / "emb")
    emb = encode_task(tiny_encoder, task, store=store, progress=False)
    assert sorted(loads) == sorted(r.path for r in task.images), "each unique image is loaded exactly once"
    assert emb.images.shape[0] == len(task.images) < len(task)
    assert emb.texts.shape[0] == len(task.texts)
    calls = dict(tiny_encoder.calls)
    again = encode_task(tiny_encoder, task, store=store, progress=False)
    assert again.from_cache and tiny_encoder.calls == calls, "a cache hit encodes nothing"
    # scores agree with encoding one item by hand
    scores = choice_scores(emb, task)
    image = tiny_encoder.encode_images([task.images[task.image_index[3]].load()], progress=False)
    option_emb = tiny_encoder.encode_texts(list(task.options[3]), progress=False)
    np.testing.assert_allclose(scores[3], (image @ option_emb.T).numpy()[0], atol=1e-5)


def test_evaluate_tables_and_identity_map(fixtures, tiny_encoder, tmp_path):
    store = EmbeddingStore(root=tmp_path / "emb")
    task = load_benchmark("vg_attribution", fixtures)
    identity = LabclipMap(tiny_encoder.embed_dim)
    table = evaluate(tiny_encoder, task, {"CLIP": None, "identity A": identity}, store=store, progress=False)
    assert list(table.columns) == COLUMNS and set(table.precision) == {"fp32"}
    assert set(table.metric) == {"macro accuracy", "micro accuracy"} and table.value.between(0, 1).all()
    # A = I changes scores only by rounding (TinyClip's text tower is a bag of words, so near-ties are common and
    # the table's accuracies may differ by a tie or two; the scores themselves must agree)
    emb = encode_task(tiny_encoder, task, store=store, progress=False)
    np.testing.assert_allclose(choice_scores(emb, task, identity), choice_scores(emb, task), atol=1e-6)
    retrieval = evaluate(tiny_encoder, load_benchmark("coco_retrieval", fixtures), store=store, progress=False)
    assert {"text→image R@1", "image→text R@10"} <= set(retrieval.metric)
    out = save_results(table, tmp_path / "r" / "vga.json")
    assert json.loads(out.read_text())[0]["benchmark"] == "vg_attribution"
    with pytest.raises(FileExistsError, match="earlier result"):
        save_results(table, out)
    save_results(table, out, overwrite=True)
    assert [p.name for p in out.parent.iterdir()] == ["vga.json"], "no temporary file left behind"
    with pytest.raises(ValueError, match=r"A is 4×4"):
        evaluate(tiny_encoder, task, {"wrong A": LabclipMap(4)}, store=store, progress=False)


def test_vg_relation_reports_both_macro_averages(fixtures, tiny_encoder, tmp_path):
    import labclip_utils.evaluation as ev

    task = load_benchmark("vg_relation", fixtures)
    relations = sorted(set(task.group))
    assert len(relations) == 2 and not set(relations) & ev.ARO_SYMMETRIC_RELATIONS
    table = evaluate(tiny_encoder, task, store=EmbeddingStore(root=tmp_path), progress=False)
    unfiltered = table[table.metric == "macro accuracy"]
    filtered = table[table.metric == "macro accuracy (symmetric dropped)"]
    assert "none dropped (LABCLIP's notebook)" in unfiltered.definition.iloc[0]
    assert "mean over 2 relations" in filtered.definition.iloc[0], "nothing to drop in the analogue"
    # once a relation is on ARO's symmetric list, the filtered average leaves it out
    task.group = np.array([("next to" if g == relations[0] else g) for g in task.group], dtype=object)
    table = evaluate(tiny_encoder, task, store=EmbeddingStore(root=tmp_path), progress=False)
    filtered = table[table.metric == "macro accuracy (symmetric dropped)"]
    assert "mean over 1 relations, ARO's symmetric relations dropped" in filtered.definition.iloc[0]
    assert "next to" in ev.ARO_SYMMETRIC_RELATIONS and len(ev.ARO_SYMMETRIC_RELATIONS) > 100


def test_scenes_in_memory_use_the_same_runner_and_share_the_cache(tiny_encoder, tmp_path):
    ds = make_scenes(120, "clevr", 2, seed=4, image_size=32)
    store = EmbeddingStore(root=tmp_path)
    emb = embed_scenes(tiny_encoder, ds, store=store, progress=False)
    calls = dict(tiny_encoder.calls)
    task = swap_task(ds, "clevr-like", split="test")
    table = evaluate(tiny_encoder, task, {"CLIP": None}, store=store, progress=False)
    assert tiny_encoder.calls == calls, "the split's swap task reuses the dataset's embeddings: nothing re-encoded"
    test = emb.select("test")
    assert result(table, "CLIP", "accuracy") == pytest.approx(swap_accuracy(test.images, test.captions, test.negatives))
    assert len(task) == int((ds.split == "test").sum())
    with pytest.raises(ValueError, match="unknown split"):
        swap_task(ds, split="tset")


def test_raw_text_dot_scores_plain_clip_with_unnormalised_text(tiny_encoder, tmp_path):
    ds = make_scenes(40, "clevr", 2, seed=5, image_size=32)
    store = EmbeddingStore(root=tmp_path)
    task = swap_task(ds, score="raw_text_dot", ties="correct")
    emb = encode_task(tiny_encoder, task, store=store, progress=False)
    raw = tiny_encoder.encode_texts(list(task.options[0]), progress=False, normalize=False)
    image = tiny_encoder.encode_images([task.images[task.image_index[0]].load()], progress=False)
    np.testing.assert_allclose(choice_scores(emb, task)[0], (image @ raw.T).numpy()[0], rtol=1e-5)
    # with a map, texts are re-normalised after A, as in the paper
    mapped = choice_scores(emb, task, LabclipMap(tiny_encoder.embed_dim))[0]
    np.testing.assert_allclose(mapped, (image @ torch.nn.functional.normalize(raw, dim=-1).T).numpy()[0], atol=1e-5)
    table = evaluate(tiny_encoder, task, {"CLIP": None, "LABCLIP": LabclipMap(tiny_encoder.embed_dim)}, store=store,
                     progress=False)
    assert "un-normalised text" in table.definition.iloc[0]
    labclip = table[table.model == "LABCLIP"]
    assert not labclip.definition.str.contains("plain CLIP").any(), "a LABCLIP row says what it is"
    assert labclip.definition.str.contains("re-normalised after A").all()


def test_every_metric_family_has_a_row_builder(fixtures):
    import labclip_utils.evaluation as ev

    assert set(ev.ROW_BUILDERS) == {"accuracy", "binding", "aro", "sugarcrepe"}, "the families ChoiceTask documents"
    assert ChoiceTask.metric in ev.ROW_BUILDERS, "the default metric has a builder"
    for build in [*ev.ROW_BUILDERS.values(), *ev.TASK_ROW_BUILDERS.values()]:
        assert build.__doc__, f"{build.__name__} says what its benchmark counts"
    used = {}
    for name in BENCHMARKS:
        task = load_benchmark(name, fixtures, tagger=scene_tagger())
        if isinstance(task, ChoiceTask):
            assert task.metric in ev.ROW_BUILDERS, f"{name}: metric {task.metric!r} has no row builder"
            used[name] = ev.row_builder(task)
    assert set(ev.ROW_BUILDERS.values()) <= set(used.values()), "every family is used by a registered benchmark"
    assert used["vg_relation"] is ev.aro_relation_rows and used["vg_attribution"] is ev.aro_attribution_rows
    assert used["clevr"] is ev.binding_rows and used["sugarcrepe"] is ev.sugarcrepe_rows
    assert used["coco_order"] is ev.accuracy_rows


def test_an_unknown_metric_is_refused_before_encoding(fixtures, tiny_encoder, tmp_path):
    task = dataclasses.replace(load_benchmark("vg_relation", fixtures), metric="bleu")
    with pytest.raises(ValueError, match=r"task 'vg_relation': unknown metric 'bleu'") as refused:
        evaluate(tiny_encoder, task, store=EmbeddingStore(root=tmp_path), progress=False)
    assert all(repr(known) in str(refused.value) for known in ("accuracy", "binding", "aro", "sugarcrepe"))
    assert tiny_encoder.calls == {"image": 0, "text": 0}, "refused before anything is encoded"
