"""Scenes: determinism, worlds, captions, negatives, splits, file formats and the SPAR shortcut."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from labclip_utils.scenes import (
    BAG_PRESERVING,
    CLEVR_COLORS,
    NEGATIVES,
    SHAPES,
    SPAR_PAIRS,
    CaptionStyle,
    NoNegative,
    bag_of_words,
    blind_swap_accuracy,
    caption_text,
    compositional_split,
    iid_split,
    load_scenes,
    make_scenes,
    render,
    same_scene,
    save_scenes,
    split_report,
    swap_attributes,
    swap_objects,
)
from labclip_utils.scenes.splits import combination_key
from labclip_utils.scenes.world import sample_scene, scene_seed


def test_same_seed_same_pixels_and_captions():
    a, b = make_scenes(30, "clevr", 3, seed=5), make_scenes(30, "clevr", 3, seed=5)
    assert a.captions == b.captions and a.negatives == b.negatives
    assert np.array_equal(a.images(), b.images())
    c = make_scenes(30, "clevr", 3, seed=6)
    assert a.captions != c.captions
    assert not np.array_equal(a.images(), c.images())


def test_scene_i_does_not_depend_on_n():
    assert make_scenes(5, seed=2).captions == make_scenes(50, seed=2).captions[:5]


@pytest.mark.parametrize("size", [32, 64, 224])
def test_render_shape_dtype_and_objects_visible(size):
    rec = sample_scene("clevr", 2, scene_seed(0, 0))
    img = render(rec, size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    for obj in rec.objects:  # the object's colour is present near its centre
        cx, cy = int(obj.x * size), int(obj.y * size)
        patch = img[max(0, cy - 3) : cy + 4, max(0, cx - 3) : cx + 4].reshape(-1, 3).astype(int)
        target = np.array(CLEVR_COLORS[obj.color])
        assert np.abs(patch - target).sum(axis=1).min() < 150, (obj, size)


@pytest.mark.parametrize("n_objects", range(1, 11))
def test_objects_never_overlap_and_stay_inside(n_objects):
    for i in range(50):
        rec = sample_scene("clevr", n_objects, scene_seed(1, i))
        assert len(rec.objects) == n_objects
        for o in rec.objects:
            assert o.radius <= o.x <= 1 - o.radius and o.radius <= o.y <= 1 - o.radius
        for k, a in enumerate(rec.objects):
            for b in rec.objects[k + 1 :]:
                assert np.hypot(a.x - b.x, a.y - b.y) >= a.radius + b.radius


def test_clevr_world_uses_clevr_vocabulary_and_both_sizes():
    ds = make_scenes(500, "clevr", 2, seed=0)
    colors = Counter(c for r in ds.records for c in r.colors)
    assert set(colors) == set(CLEVR_COLORS)
    assert set(s for r in ds.records for s in r.shapes) == set(SHAPES)
    assert {o.size for r in ds.records for o in r.objects} == {"large", "small"}
    # clevr scenes are stored left to right
    assert all(r.objects[0].x <= r.objects[1].x for r in ds.records)


def test_spar_position_predicts_colour_and_spare_does_not():
    spar = make_scenes(1000, "spar", seed=0)
    first_set, second_set = {a for a, _ in SPAR_PAIRS}, {b for _, b in SPAR_PAIRS}
    for rec in spar.records:
        a, b = rec.objects
        assert (a.color, b.color) in SPAR_PAIRS
        assert a.x < b.x or a.y > b.y  # first object left of, or below, the second
    spare = make_scenes(2000, "spare", seed=0)
    left_colours = Counter(min(r.objects, key=lambda o: o.x).color for r in spare.records)
    assert set(left_colours) == first_set | second_set
    share = sum(left_colours[c] for c in first_set) / sum(left_colours.values())
    assert 0.4 < share < 0.6  # in spare, being on the left says nothing about the colour


def test_world_argument_errors():
    with pytest.raises(ValueError, match="unknown world"):
        make_scenes(3, "mnist")
    with pytest.raises(ValueError, match="exactly 2 objects"):
        make_scenes(3, "spar", n_objects=3)
    with pytest.raises(ValueError, match="unknown colours"):
        make_scenes(3, colors=["pink", "red"])
    with pytest.raises(ValueError, match="n_objects"):
        make_scenes(3, n_objects=17)


def test_captions_style():
    pairs = (("red", "cube"), ("blue", "sphere"))
    assert caption_text(pairs) == "a red cube and a blue sphere"
    assert caption_text(pairs, article=False) == "red cube and blue sphere"
    assert caption_text((("orange", "cone"),)) == "an orange cone"
    ds = make_scenes(200, "spare", seed=1, style=CaptionStyle(order="left-to-right"))
    for i in range(len(ds)):
        xs = [p[0] for p in ds.labels(i)["positions"]]
        assert xs == sorted(xs)
    rnd = make_scenes(200, "clevr", 3, seed=1, style=CaptionStyle(order="random"))
    assert rnd.captions == make_scenes(200, "clevr", 3, seed=1, style=CaptionStyle(order="random")).captions
    assert rnd.captions != make_scenes(200, "clevr", 3, seed=1).captions
    with pytest.raises(ValueError, match="caption order"):
        CaptionStyle(order="alphabetical")


def test_labels_follow_caption_order():
    ds = make_scenes(100, "clevr", 4, seed=3, style=CaptionStyle(order="random"))
    for i in range(len(ds)):
        labels = ds.labels(i)
        assert list(zip(labels["colors"], labels["shapes"], strict=True)) == list(ds.pairs[i])
    assert ds.attribute_matrix("colors").shape == (100, 4)


@pytest.mark.parametrize("kind", sorted(NEGATIVES))
def test_every_negative_family_keeps_its_guarantee_on_10k(kind):
    ds = make_scenes(10_000, "clevr", 3, seed=11, negative=kind)
    assert all(n is not None for n in ds.negatives), "distinct colours and shapes always admit a negative"
    for pos, neg, pos_text, neg_text in zip(ds.pairs, ds.negative_pairs, ds.captions, ds.negatives, strict=True):
        assert not same_scene(pos, neg)
        assert pos_text != neg_text
        if kind in BAG_PRESERVING:
            assert bag_of_words(pos_text) == bag_of_words(neg_text)
        else:
            assert bag_of_words(pos_text) != bag_of_words(neg_text)


def test_swaps_refuse_when_nothing_can_be_swapped():
    with pytest.raises(NoNegative):
        swap_attributes((("red", "cube"), ("red", "sphere")))
    with pytest.raises(NoNegative):
        swap_objects((("red", "cube"),))
    assert swap_attributes((("red", "cube"), ("blue", "sphere"))) == (("blue", "cube"), ("red", "sphere"))
    assert swap_objects((("red", "cube"), ("blue", "sphere"))) == (("red", "sphere"), ("blue", "cube"))
    ds = make_scenes(300, "clevr", 2, seed=0, colors=["red", "blue"], shapes=["cube", "sphere"])
    ds_rep = make_scenes(300, "clevr", 3, seed=0, colors=["red", "blue"])
    assert all(n is not None for n in ds.negatives)
    # three objects, two colours: some scenes repeat a colour on objects that cannot be swapped
    missing = [i for i, n in enumerate(ds_rep.negatives) if n is None]
    assert missing and ds_rep[missing[0]].negative is None


def test_compositional_split_holds_out_combinations_with_their_swaps():
    ds = make_scenes(4000, "clevr", 2, seed=0)
    groups = {s: {combination_key(p) for p, t in zip(ds.pairs, ds.split, strict=True) if t == s}
              for s in ("train", "val", "test")}
    assert groups["test"] and groups["val"]
    assert not groups["test"] & groups["train"] and not groups["val"] & groups["train"]
    assert not groups["test"] & groups["val"]
    for neg, split in zip(ds.negative_pairs, ds.split, strict=True):  # each swap partner sits in the same split
        assert combination_key(neg) not in set().union(*(g for s, g in groups.items() if s != split))
    share = np.mean(ds.split == "test")
    assert 0.05 < share < 0.2
    report = split_report(ds.pairs, ds.split)
    assert report.loc["test", "combinations also in train"] == 0 and report["scenes"].sum() == len(ds)
    iid = ds.with_settings(split="iid")
    assert split_report(iid.pairs, iid.split).loc["test", "combinations also in train"] > 0
    # the same seed gives the same split; another seed another one
    assert np.array_equal(make_scenes(4000, "clevr", 2, seed=0).split, ds.split)
    assert not np.array_equal(make_scenes(4000, "clevr", 2, seed=0, split_seed=1).split, ds.split)


def test_held_out_combinations_agree_across_samples():
    a, b = make_scenes(3000, "clevr", 2, seed=0), make_scenes(500, "clevr", 2, seed=9, image_size=32)
    held_a = {combination_key(p) for p, s in zip(a.pairs, a.split, strict=True) if s == "test"}
    for p, s in zip(b.pairs, b.split, strict=True):
        assert (combination_key(p) in held_a) == (s == "test") or combination_key(p) not in {
            combination_key(q) for q in a.pairs}
    assert compositional_split([(("red", "cube"), ("blue", "cone"))])[0] == compositional_split(
        [(("blue", "cone"), ("red", "cube"))])[0]


def test_iid_split_fractions():
    split = iid_split(1000, test=0.1, val=0.2, seed=42)
    assert (split == "test").sum() == 100 and (split == "val").sum() == 200
    with pytest.raises(ValueError):
        iid_split(10, test=0.6, val=0.5)
    ds = make_scenes(500, "clevr", seed=0, split="iid")
    assert (ds.split == "test").sum() == 50


def test_dataset_item_and_select():
    ds = make_scenes(100, "clevr", 2, seed=0)
    image, caption, negative, labels = ds[3]
    assert image.size == (64, 64) and caption == ds.captions[3] and negative == ds.negatives[3]
    assert labels["split"] == ds.split[3]
    test = ds.select("test")
    assert len(test) == int((ds.split == "test").sum()) and set(test.split) == {"test"}
    with pytest.raises(IndexError):
        ds[100]
    with pytest.raises(ValueError, match="unknown split"):
        ds.select("dev")


def test_fingerprint_tracks_content():
    a = make_scenes(50, seed=0)
    assert a.fingerprint() == make_scenes(50, seed=0).fingerprint()
    assert a.fingerprint() != make_scenes(50, seed=1).fingerprint()
    assert a.fingerprint() != make_scenes(50, seed=0, image_size=128).fingerprint()
    assert a.fingerprint() != a.with_settings(negative="add_object").fingerprint()


@pytest.mark.parametrize("world,n_objects", [("clevr", 2), ("clevr", 5), ("spar", 2), ("spare", 2)])
def test_save_load_round_trip(tmp_path, world, n_objects):
    ds = make_scenes(25, world, n_objects, seed=4)
    save_scenes(ds, tmp_path / "data")
    back = load_scenes(tmp_path / "data")
    assert back.captions == ds.captions and back.negatives == ds.negatives
    assert np.array_equal(back.split, ds.split)
    assert np.array_equal(back.images(), ds.images())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder left behind"
    with pytest.raises(FileExistsError):
        save_scenes(ds, tmp_path / "data")


def test_clevr_files_follow_labclip_layout(tmp_path):
    save_scenes(make_scenes(3, "clevr", 2, seed=0), tmp_path / "c")
    with open(tmp_path / "c" / "output_2obj.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == "CLEVR_2obj_000000.png" and len(rows[0]) == 5
    assert rows[0][1] in SHAPES and rows[0][2] in CLEVR_COLORS
    scene = json.loads((tmp_path / "c" / "scenes_2obj" / "CLEVR_2obj_000000.json").read_text())
    assert {"shape", "color", "size", "material", "3d_coords", "pixel_coords", "rotation"} <= set(scene["objects"][0])
    assert set(scene["relationships"]) == {"right", "left", "front", "behind"}


def test_reads_real_clevr_without_our_extension(tmp_path):
    """A scene JSON as Blender's CLEVR writes it (no `labclip` key) still loads, with paper-style captions."""
    save_scenes(make_scenes(4, "clevr", 2, seed=0), tmp_path / "c")
    (tmp_path / "c" / "labclip.json").unlink()
    for path in (tmp_path / "c" / "scenes_2obj").glob("*.json"):
        data = json.loads(path.read_text())
        del data["labclip"]
        path.write_text(json.dumps(data))
    ds = load_scenes(tmp_path / "c")
    assert ds.captions[0].count(" and ") == 1 and not ds.captions[0].startswith("a ")
    assert all(0 <= o.x <= 1 for r in ds.records for o in r.objects)


def test_missing_images_are_skipped_with_a_warning(tmp_path):
    save_scenes(make_scenes(5, "clevr", 2, seed=0), tmp_path / "c")
    (tmp_path / "c" / "images_2obj" / "CLEVR_2obj_000001.png").unlink()
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(load_scenes(tmp_path / "c")) == 4


def _clevr_folder(tmp_path):
    save_scenes(make_scenes(3, "clevr", 2, seed=0), tmp_path / "c")
    return tmp_path / "c"


def test_bad_json_names_file(tmp_path):
    folder = _clevr_folder(tmp_path)
    bad = folder / "scenes_2obj" / "CLEVR_2obj_000002.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"CLEVR_2obj_000002\.json: not valid JSON"):
        load_scenes(folder)


def test_unknown_colour_names_file_and_field(tmp_path):
    folder = _clevr_folder(tmp_path)
    path = folder / "scenes_2obj" / "CLEVR_2obj_000001.json"
    data = json.loads(path.read_text())
    data["objects"][1]["color"] = "magenta"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"CLEVR_2obj_000001\.json: field objects\[1\]\.color.*'magenta'"):
        load_scenes(folder)


def test_missing_field_and_bad_csv_row(tmp_path):
    folder = _clevr_folder(tmp_path)
    path = folder / "scenes_2obj" / "CLEVR_2obj_000000.json"
    data = json.loads(path.read_text())
    del data["objects"][0]["shape"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"CLEVR_2obj_000000\.json: missing field objects\[0\]\.'shape'"):
        load_scenes(folder)
    folder2 = _clevr_folder(tmp_path / "x")
    (folder2 / "output_2obj.csv").write_text("CLEVR_2obj_000000.png,cube,blue,sphere\n")
    with pytest.raises(ValueError, match=r"output_2obj\.csv: line 1"):
        load_scenes(folder2)


def test_pug_missing_column_and_bad_position(tmp_path):
    save_scenes(make_scenes(6, "spar", seed=0), tmp_path / "s")
    table = pd.read_csv(tmp_path / "s" / "labels.csv", dtype=str, keep_default_na=False)
    table.drop(columns=["character2_texture"]).to_csv(tmp_path / "s" / "labels.csv", index=False)
    with pytest.raises(ValueError, match=r"labels\.csv: missing column\(s\) \['character2_texture'\]"):
        load_scenes(tmp_path / "s")
    # PUG writes positions as free words (left, top, center, ...): any word is kept as the scene's position label
    table.loc[0, "character1_pos"] = "top"
    table.to_csv(tmp_path / "s" / "labels.csv", index=False)
    assert load_scenes(tmp_path / "s").records[0].extra["positions"][0] == "top"


def test_pug_spar_filter_matches_labclip(tmp_path):
    """Rows with a blank animal, the same animal twice or a Default texture are dropped, as LABCLIP does."""
    (tmp_path / "p").mkdir()
    rows = [
        ["a.png", "desert", "Crow", "Fox", "left", "right", "Blue", "Red"],
        ["b.png", "desert", "Crow", "blank", "left", "right", "Blue", "Red"],
        ["c.png", "desert", "Crow", "Crow", "below", "above", "Grass", "Stone"],
        ["d.png", "desert", "Crow", "Fox", "below", "above", "Default", "Red"],
        ["e.png", "desert", "Wolf", "Zebra", "below", "above", "Grass", "Stone"],
    ]
    pd.DataFrame(rows, columns=["filename", "world_name", "character_name", "character2_name", "character1_pos",
                                "character2_pos", "character_texture", "character2_texture"]).to_csv(
        tmp_path / "p" / "labels.csv", index=False)
    ds = load_scenes(tmp_path / "p")
    assert [r.image_file for r in ds.records] == ["a.png", "e.png"]
    assert ds.captions == ["Blue Crow and Red Fox", "Grass Wolf and Stone Zebra"]
    # the paper's negative: the caption set written with the objects swapped ("Blue o2 and Red o1")
    assert ds.negatives == ["Blue Fox and Red Crow", "Grass Zebra and Stone Wolf"]
    mirrored = ds.with_settings(negative_order="mirror")
    assert mirrored.negatives == ["Red Crow and Blue Fox", "Stone Wolf and Grass Zebra"]


def test_pug_spare_reads_world_folders(tmp_path):
    (tmp_path / "p").mkdir()
    rows = [["0000000.png", "Desert", "Crow", "Fox", "Red", "Blue", "", ""],
            ["0000009.png", "Desert", "Crow", "Fox", "Blue", "Red", "left", "right"]]
    pd.DataFrame(rows, columns=["filename", "world_name", "character_name", "character2_name", "character_texture",
                                "character2_texture", "character_pos", "character2_pos"]).to_csv(
        tmp_path / "p" / "PUG_SPARE.csv", index=False)
    ds = load_scenes(tmp_path / "p")
    assert ds.records[0].image_file == "Desert/0000000.png"
    assert [r.extra["position_varied"] for r in ds.records] == [False, True]
    with pytest.raises(ValueError, match="Desert/0000000.png: cannot read image"):
        ds.image(0)


def test_blind_caption_model_passes_spar_only_with_mirrored_negatives():
    def blind(world, order):
        train, test = (make_scenes(600, world, seed=s).with_settings(negative_order=order) for s in (0, 1))
        return blind_swap_accuracy(train, test)

    assert blind("spar", "mirror") > 0.95
    assert abs(blind("spar", "caption_set") - 0.5) < 0.1
    assert abs(blind("spare", "mirror") - 0.5) < 0.1


def test_rendering_throughput_is_thousands_per_second():
    import time

    ds = make_scenes(400, "clevr", 2, seed=0)
    ds.image(0)
    start = time.perf_counter()
    ds.images()
    rate = len(ds) / (time.perf_counter() - start)
    assert rate > 1000, f"{rate:.0f} scenes/s"

