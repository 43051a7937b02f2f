"""Conjunctive search: scenes a bag of words cannot tell apart, and the probe-transfer exercise's helper."""

from __future__ import annotations

import numpy as np
import pytest

from labclip_utils.conjunctive import TARGETS, conjunctive_search, probe_transfer, search_scene, search_scenes


def test_present_and_absent_scenes_hold_the_same_colours_and_shapes_in_the_same_numbers():
    for n_objects in (2, 5, 16):
        present = search_scene(TARGETS[0], n_objects, True, seed=7)
        absent = search_scene(TARGETS[0], n_objects, False, seed=7)
        colours = [sorted(o.color for o in scene.objects) for scene in (present, absent)]
        shapes = [sorted(o.shape for o in scene.objects) for scene in (present, absent)]
        assert colours[0] == colours[1] and shapes[0] == shapes[1] and len(present.objects) == n_objects
        target = (TARGETS[0][0], TARGETS[0][1])
        assert target in {(o.color, o.shape) for o in present.objects}
        assert target not in {(o.color, o.shape) for o in absent.objects}
    ds, labels = search_scenes(TARGETS[1], 4, 6)
    assert labels.tolist() == [True, False] * 3
    assert np.array_equal(ds.bag_of_concepts()[0::2].sum(0), ds.bag_of_concepts()[1::2].sum(0))


def test_a_search_scene_refuses_an_impossible_number_of_objects():
    with pytest.raises(ValueError, match="n_objects must be in 2.."):
        search_scene(TARGETS[0], 1, True, seed=0)


def test_probe_transfer_with_equal_counts_is_the_searchs_own_probe(tiny_encoder):
    sizes = dict(n_train=16, n_test=12, image_size=32)
    search = conjunctive_search(tiny_encoder, counts=(3,), **sizes)
    probe = search.set_index("reader").loc["linear probe on the image embedding", "accuracy"]
    assert probe_transfer(tiny_encoder, 3, 3, **sizes) == pytest.approx(probe, abs=1e-12)
    assert 0.0 <= probe_transfer(tiny_encoder, 3, 5, **sizes) <= 1.0
