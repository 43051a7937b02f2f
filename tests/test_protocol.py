"""The paper profile follows the paper's protocol: each point checked against the official definition.

The reference functions below are written from the authors' code (LABCLIP's ``data_loading/clevr.py`` and
``alignment/pug_alignment_utils.py``, ARO's ``dataset_zoo``), in the same style as that code (NumPy matrices, list
membership, pandas filters, the global ``random`` and ``np.random`` generators), and run on small inputs that look
like the real data. The book's implementations must give the same items.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from labclip_utils.benchmarks import perturbations as text
from labclip_utils.benchmarks.coco import coco_training_images, coco_training_pairs, load_coco_retrieval
from labclip_utils.book.protocol import EXPERIMENTS, PROTOCOL, choices_for, protocol_table
from labclip_utils.finetune import FinetuneConfig
from labclip_utils.labclip import LabclipConfig
from labclip_utils.scenes import load_scenes, make_scenes, save_scenes
from labclip_utils.scenes.paper_split import clevr_paper_split, pug_pair_labels, pug_paper_split

COLOURS = ["blue", "gray", "brown", "cyan", "green", "purple", "red", "yellow"]
SHAPES3 = ["cube", "sphere", "cylinder"]


# -- the paper's CLEVR split, as its code writes it --------------------------------------------------------------
def _reference_clevr_split(labels, ratio=0.1, seed=42):
    attrs, objs = sorted(set(COLOURS)), sorted(set(SHAPES3))

    def to_matrix(t):
        m = np.zeros((3, 8), dtype=int)
        for i in range(0, len(t), 2):
            m[objs.index(t[i + 1])][attrs.index(t[i])] += 1
        return m

    def to_tuple(m):
        out = []
        for o in range(3):
            for a in range(8):
                for _ in range(m[o][a]):
                    out += [attrs[a], objs[o]]
        return tuple(out)

    matrices = []
    for label in sorted(set(labels)):
        m = to_matrix(label)
        if not any(np.array_equal(m, x) for x in matrices):
            matrices.append(m)
    unique = [to_tuple(m) for m in matrices]
    random.seed(seed)
    test, val = [], []
    while len(test) < int(ratio * len(unique)):
        s = random.sample(unique, 1)[0]
        m = to_matrix(s)
        if any(np.array_equal(m, x) for x in test):
            continue
        test.append(m)
        m = to_matrix((s[2], s[1], s[0], s[3]))
        if any(np.array_equal(m, x) for x in test):
            continue
        test.append(m)
    while len(val) < int(ratio * len(unique)):
        s = random.sample(unique, 1)[0]
        m = to_matrix(s)
        if any(np.array_equal(m, x) for x in val) or any(np.array_equal(m, x) for x in test):
            continue
        val.append(m)
        m = to_matrix((s[2], s[1], s[0], s[3]))
        if any(np.array_equal(m, x) for x in val) or any(np.array_equal(m, x) for x in test):
            continue
        val.append(m)
    tr, va, te = [], [], []
    for i, label in enumerate(labels):
        m = to_matrix(label)
        if any(np.array_equal(m, x) for x in test):
            te.append(i)
        elif any(np.array_equal(m, x) for x in val):
            va.append(i)
        else:
            tr.append(i)
    return tr, va, te


def _clevr_like_labels(n, seed):
    """Pair labels drawn as the authors' CLEVR generator draws them (random.choices), same-shape pairs removed."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        shapes, colours = rng.choices(SHAPES3, k=2), rng.choices(COLOURS, k=2)
        if shapes[0] != shapes[1]:
            out.append((colours[0], shapes[0], colours[1], shapes[1]))
    return out


@pytest.mark.parametrize("n,seed", [(600, 0), (2500, 1)])
def test_clevr_split_is_the_papers_item_for_item(n, seed):
    labels = _clevr_like_labels(n, seed)
    assert clevr_paper_split(labels) == _reference_clevr_split(labels)


def test_clevr_split_through_a_dataset_read_from_files(tmp_path):
    ds = make_scenes(400, "clevr", 2, seed=3, colors=COLOURS, shapes=SHAPES3)
    folder = save_scenes(ds, tmp_path / "clevr")
    loaded = load_scenes(folder).with_settings(split="paper")
    labels = [tuple(v for o in r.objects for v in (o.color, o.shape)) for r in loaded.records]
    train, val, test = _reference_clevr_split(labels)
    assert loaded.paper_indices == (train, val, test)
    assert set(np.flatnonzero(loaded.split == "test")) == set(test)
    # swap twins share a split: a held-out combination's hard negative is never in training
    held = {tuple(sorted(loaded.pairs[i])) for i in test}
    for i in train:
        assert tuple(sorted(loaded.negative_pairs[i])) not in held


# -- the paper's PUG split, as its code writes it ---------------------------------------------------------------
def _reference_pug_split(df, pair_labels_dict, seed=42):
    random.seed(seed)
    pair_labels = list(pair_labels_dict.keys())
    unique = []
    for a1, o1, a2, o2 in pair_labels:
        if (a1, o2, a2, o1) in unique or (a2, o1, a1, o2) in unique:
            continue
        unique.append((a1, o1, a2, o2))

    def extend(labels):
        idx = []
        for t1, n1, t2, n2 in labels:
            for c1, c2, x1, x2 in ((n1, n2, t1, t2), (n2, n1, t2, t1), (n1, n2, t2, t1), (n2, n1, t1, t2)):
                rows = df[(df.character_name == c1) & (df.character2_name == c2) & (df.character_texture == x1)
                          & (df.character2_texture == x2)]
                idx.extend(list(rows.index))
        return idx

    test_labels = random.sample(unique, int(0.1 * len(unique)))
    test = extend(test_labels)
    val_labels = random.sample([c for c in unique if c not in test_labels], int(0.1 * len(unique)))
    val = extend(val_labels)
    train = [i for i in df.index if i not in test and i not in val]
    return train, val, test


def _spare_like_table(seed):
    rng = random.Random(seed)
    animals = ["Crow", "Fox", "DeerStag", "Wolf", "Zebra", "Elephant"]
    textures = ["Red", "Blue", "Green", "Yellow", "Brown"]
    rows = []
    for world in ("Desert", "Island"):
        for a in animals:
            for b in animals:
                for t in textures:
                    for u in textures:
                        if a != b and t != u and rng.random() < 0.6:
                            rows.append({"world_name": world, "character_name": a, "character2_name": b,
                                         "character_texture": t, "character2_texture": u})
    return pd.DataFrame(rows)


def test_pug_spare_split_is_the_papers_item_for_item():
    df = _spare_like_table(0)
    rows = list(zip(df.character_texture, df.character_name, df.character2_texture, df.character2_name, strict=True))
    attributes, objects = df.character_texture.unique(), df.character_name.unique()
    reference_dict = {(a1, o1, a2, o2): i for i, (a1, o1, a2, o2) in enumerate(
        (a1, o1, a2, o2) for a1 in attributes for o1 in objects for a2 in attributes for o2 in objects
        if o1 != o2 and a1 != a2)}
    labels = pug_pair_labels(rows)
    assert labels == list(reference_dict)
    ours = pug_paper_split(rows, labels)
    assert ours == _reference_pug_split(df, reference_dict)
    assert set(ours[1]) & set(ours[2]), "as in the paper, a row can be in both held-out lists"


def test_pug_spar_split_is_the_papers_item_for_item():
    rng = random.Random(1)
    animals = [f"Animal{k}" for k in range(9)]
    rows = []
    for a in animals:
        for b in animals:
            if a != b:
                for t, u in (("Blue", "Red"), ("Grass", "Stone")):
                    rows += [{"character_name": a, "character2_name": b, "character_texture": t,
                              "character2_texture": u}] * rng.randint(1, 2)
    df = pd.DataFrame(rows)
    reference_dict = {}
    for o1 in df.character_name.unique():
        for o2 in df.character_name.unique():
            if o1 != o2:
                reference_dict[("Blue", o1, "Red", o2)] = len(reference_dict)
                reference_dict[("Grass", o1, "Stone", o2)] = len(reference_dict)
    table = list(zip(df.character_texture, df.character_name, df.character2_texture, df.character2_name, strict=True))
    labels = pug_pair_labels(table, (("Blue", "Red"), ("Grass", "Stone")))
    assert labels == list(reference_dict)
    assert pug_paper_split(table, labels) == _reference_pug_split(df, reference_dict)


# -- captions, negatives, positions -------------------------------------------------------------------------
def test_spar_negative_is_written_as_the_papers_caption_set_writes_it(tmp_path):
    spar = make_scenes(50, "spar", 2, seed=0)
    for pairs, negative in zip(spar.pairs, spar.negative_pairs, strict=True):
        (a1, o1), (a2, o2) = pairs
        assert negative == ((a1, o2), (a2, o1)), "the first colour stays first: 'Blue o2 and Red o1'"
    mirrored = spar.with_settings(negative_order="mirror")
    assert mirrored.negative_pairs[0] == ((spar.pairs[0][1][0], spar.pairs[0][0][1]),
                                          (spar.pairs[0][0][0], spar.pairs[0][1][1]))
    spare = make_scenes(50, "spare", 2, seed=0)
    for pairs, negative in zip(spare.pairs, spare.negative_pairs, strict=True):
        (a1, o1), (a2, o2) = pairs
        assert negative == ((a2, o1), (a1, o2)), "SPARE's caption set has every order: 'a2 o1 and a1 o2'"


def _reference_caption_labels(labels, colours, shapes):
    """The authors' ``get_pair_labels`` and ``get_caption_labels`` (``alignment/clevr_alignment_utils.py``), with
    their sets' iteration order given as lists: the caption set, and each row's caption and negative index."""
    pair_labels = []
    for attr1 in colours:
        for obj1 in shapes:
            for attr2 in colours:
                for obj2 in shapes:
                    if obj1 == obj2:
                        continue
                    if (attr1, obj1, attr2, obj2) in pair_labels or (attr2, obj2, attr1, obj1) in pair_labels:
                        continue
                    pair_labels.append((attr1, obj1, attr2, obj2))
    index = {label: i for i, label in enumerate(pair_labels)}
    captions = [f"{p[0]} {p[1]} and {p[2]} {p[3]}" for p in pair_labels]
    positives, negatives = [], []
    for p in labels:
        positives.append(index[p] if p in index else index[(p[2], p[3], p[0], p[1])])
        n = (p[2], p[1], p[0], p[3])
        negatives.append(index[n] if n in index else index[(n[2], n[3], n[0], n[1])])
    return captions, positives, negatives


@pytest.fixture
def clevr_renders(tmp_path):
    """Scenes in the authors' CLEVR layout without the book's metadata (as the real download), same-colour pairs
    included (the authors' generator draws colours with repetition)."""
    from dataclasses import replace

    from labclip_utils.scenes import SceneDataset

    ds = make_scenes(400, "clevr", 2, seed=3, colors=COLOURS, shapes=SHAPES3)
    records = [r if i % 8 else replace(r, objects=(r.objects[0], replace(r.objects[1], color=r.objects[0].color)))
               for i, r in enumerate(ds.records)]  # every eighth scene: two objects of one colour
    ds = SceneDataset(records, ds.settings, name=ds.name, attributes=ds.attributes, objects=ds.objects)
    folder = save_scenes(ds, tmp_path / "clevr")
    (folder / "labclip.json").unlink()
    return folder


def test_clevr_captions_negatives_and_rows_are_the_authors(clevr_renders, tiny_encoder, tmp_path):
    from labclip_utils.benchmarks.scenes import load_binding_scenes
    from labclip_utils.labclip import fit_on_dataset
    from labclip_utils.store import EmbeddingStore
    from labclip_utils.tasks import swap_task

    ds = load_binding_scenes(clevr_renders, split_kind="paper")
    labels = [tuple(v for o in r.objects for v in (o.color, o.shape)) for r in ds.records]  # the CSV's order
    captions, pos, neg = _reference_caption_labels(labels, sorted(COLOURS), sorted(SHAPES3))
    assert ds.captions == [captions[i] for i in pos]
    assert ds.negatives == [captions[i] for i in neg], "same pairs, same words, same order as the authors'"
    same_colour = [i for i in range(len(ds)) if pos[i] == neg[i]]
    assert same_colour and all(ds.negatives[i] == ds.captions[i] for i in same_colour)
    i = next(i for i in range(len(ds)) if pos[i] != neg[i])
    (a1, o1), (a2, o2) = ds.pairs[i]
    assert a1 <= a2 and ds.negative_pairs[i] == ((a1, o2), (a2, o1)), "same first colour, shapes swapped"

    # the swap test: the authors' test rows whose negative differs from the caption, in the same order
    train, val, test = _reference_clevr_split(labels)
    task = swap_task(ds, split="test")
    assert task.options == [(captions[neg[i]], captions[pos[i]]) for i in test if pos[i] != neg[i]]
    # training: every training row, same-colour ones included (18 vs 21 steps per epoch in the audit's CSV)
    store = EmbeddingStore(tmp_path / "emb")
    fit = fit_on_dataset(tiny_encoder, ds, LabclipConfig(epochs=1, batch_size=8), store=store, progress=False)
    train_rows = int((ds.split == "train").sum())
    assert train_rows == len(set(train)) and any(i in same_colour for i in train)
    assert fit.history["steps"].iloc[-1] == -(-train_rows // 8)
    # the labelled option: same-colour scenes without a negative, so training leaves them out (the book's rule)
    dropped = fit_on_dataset(tiny_encoder, ds.with_settings(unswappable="skip"), LabclipConfig(epochs=1, batch_size=8),
                             store=store, progress=False)
    kept = train_rows - len(set(train) & set(same_colour))
    assert dropped.history["steps"].iloc[-1] == -(-kept // 8)


def test_clip_ft_trains_on_same_colour_rows_unless_told(clevr_renders, tiny_encoder):
    from labclip_utils.benchmarks.scenes import load_binding_scenes
    from labclip_utils.finetune import finetune_clip

    train = load_binding_scenes(clevr_renders, split_kind="paper").select("train")
    same = sum(n == c for n, c in zip(train.negatives, train.captions, strict=True))
    assert same > 0
    for drop, rows in ((False, len(train)), (True, len(train) - same)):
        config = FinetuneConfig(optimizer="sgd", lr=0.01, epochs=1, batch_size=32, drop_unchanged=drop)
        history = finetune_clip(tiny_encoder, train, config=config, progress=False).history
        assert len(history) == -(-rows // 32)


def test_clevr_book_captions_stay_an_option(clevr_renders):
    from labclip_utils.benchmarks.scenes import load_binding_scenes

    ours = load_binding_scenes(clevr_renders, split_kind="paper", clevr_captions="scene")
    for rec, pairs, negative in zip(ours.records, ours.pairs, ours.negative_pairs, strict=True):
        assert pairs == tuple((o.color, o.shape) for o in rec.objects)  # the file's order
        (a1, o1), (a2, o2) = pairs
        assert negative == (None if a1 == a2 else ((a2, o1), (a1, o2))), "colours swapped, same-colour skipped"
    with pytest.raises(ValueError, match="clevr_captions"):
        load_binding_scenes(clevr_renders, clevr_captions="sorted")


def test_pug_positions_accept_every_value_and_optional_columns(tmp_path):
    folder = save_scenes(make_scenes(30, "spar", 2, seed=1), tmp_path / "spar")
    table = pd.read_csv(folder / "labels.csv", dtype=str, keep_default_na=False)
    table.loc[0, "character1_pos"], table.loc[1, "character1_pos"] = "top", "somewhere odd"
    table.to_csv(folder / "labels.csv", index=False)
    ds = load_scenes(folder)
    assert ds.records[0].objects[0].y == 0.25 and np.isnan(ds.records[1].objects[0].x)
    assert ds.records[1].extra["positions"][0] == "somewhere odd"
    table.drop(columns=["character1_pos", "character2_pos", "world_name"]).to_csv(folder / "labels.csv", index=False)
    assert len(load_scenes(folder)) == len(ds)
    table.drop(columns=["character_texture"]).to_csv(folder / "labels.csv", index=False)
    with pytest.raises(ValueError, match=r"labels\.csv: missing column\(s\) \['character_texture'\]"):
        load_scenes(folder)


# -- the order perturbations, as ARO writes them -------------------------------------------------------------
class _ReferenceShuffler:
    """ARO's TextShuffler, with a tagger in place of spaCy (the same tags for both sides)."""

    def __init__(self, tagger):
        self.tagger = tagger

    def shuffle_nouns_and_adj(self, ex):
        doc = self.tagger(ex)
        t = np.array([tok for tok, _ in doc])
        noun_idx = [i for i, (_, tag) in enumerate(doc) if tag in ["NN", "NNS", "NNP", "NNPS"]]
        adjective_idx = [i for i, (_, tag) in enumerate(doc) if tag in ["JJ", "JJR", "JJS"]]
        t[noun_idx] = np.random.permutation(t[noun_idx])  # noqa: NPY002 - ARO's own code
        t[adjective_idx] = np.random.permutation(t[adjective_idx])  # noqa: NPY002
        return " ".join(t)

    def shuffle_allbut_nouns_and_adj(self, ex):
        doc = self.tagger(ex)
        t = np.array([tok for tok, _ in doc])
        noun_adj_idx = [i for i, (_, tag) in enumerate(doc) if tag in ["NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS"]]
        else_idx = np.ones(t.shape[0])
        else_idx[noun_adj_idx] = 0
        else_idx = else_idx.astype(bool)
        t[else_idx] = np.random.permutation(t[else_idx])  # noqa: NPY002
        return " ".join(t)

    @staticmethod
    def get_trigrams(sentence):
        trigrams, trigram = [], []
        for i in range(len(sentence)):
            trigram.append(sentence[i])
            if i % 3 == 2:
                trigrams.append(trigram[:])
                trigram = []
        if trigram:
            trigrams.append(trigram)
        return trigrams

    def shuffle_within_trigrams(self, ex):
        import nltk

        trigrams = self.get_trigrams(nltk.word_tokenize(ex))
        for trigram in trigrams:
            random.shuffle(trigram)
        return " ".join(" ".join(trigram) for trigram in trigrams)

    def shuffle_trigrams(self, ex):
        import nltk

        trigrams = self.get_trigrams(nltk.word_tokenize(ex))
        random.shuffle(trigrams)
        return " ".join(" ".join(trigram) for trigram in trigrams)


CAPTIONS = [
    "A man riding a brown horse on a sandy beach.",
    "Two small dogs are playing with a red ball in the green grass",
    "A kitchen with white cabinets and a black stove. There is a window.",
    "A close up of a plate of food with broccoli",
    "The giraffe is standing next to a tall tree.",
]


@pytest.fixture
def punkt(tmp_path, monkeypatch):
    """A stand-in for NLTK's punkt_tab English model (empty parameters: sentences end at . ! ?)."""
    import nltk

    folder = tmp_path / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (folder / name).write_text("")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "nltk_data"), *nltk.data.path])
    return tmp_path / "nltk_data"


@pytest.mark.parametrize("seed", [0, 7])
def test_order_options_are_aros_draw_for_draw(punkt, seed):
    tagger = text.LexiconTagger(["man", "horse", "beach", "dogs", "ball", "grass", "kitchen", "cabinets", "stove",
                                 "window", "plate", "food", "broccoli", "giraffe", "tree"],
                                ["brown", "sandy", "small", "red", "green", "white", "black", "tall"])
    reference = _ReferenceShuffler(tagger)
    np.random.seed(seed)  # noqa: NPY002 - ARO seeds the legacy generator
    random.seed(seed)
    expected = []
    for caption in CAPTIONS:  # ARO's COCO_Order loop: the raw caption perturbed, cleaned after
        options = [text.pre_caption(caption, 30)]
        for fn in (reference.shuffle_nouns_and_adj, reference.shuffle_allbut_nouns_and_adj,
                   reference.shuffle_within_trigrams, reference.shuffle_trigrams):
            options.append(text.pre_caption(fn(caption), 30))
        expected.append(options)
    rng = text.Shuffler(seed)
    assert [text.order_options(c, tagger, rng) for c in CAPTIONS] == expected
    assert text.sentence_splitter_available() and text.tokenizer_id().endswith("punkt")
    # sentence splitting is what separates "stove." into "stove" and "." inside a two-sentence caption
    tokens = text.word_tokenize(CAPTIONS[2])
    assert tokens[8:10] == ["stove", "."] and "stove." not in tokens


def test_order_uses_every_caption_of_an_image(tmp_path):
    from labclip_utils.benchmarks.aro import load_order

    (tmp_path / "val2014").mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "val2014" / "a.jpg")
    records = [{"image": "val2014/a.jpg", "caption": [f"a red cube number {k}" for k in range(7)]}]
    (tmp_path / "coco_karpathy_test.json").write_text(json.dumps(records))
    task = load_order(tmp_path, "coco_order", text.scene_tagger())
    assert len(task) == 7, "ARO uses all captions of an image, not the first five"


# -- COCO: training set and retrieval -------------------------------------------------------------------------
@pytest.fixture
def coco_root(tmp_path):
    """COCO in its real layout: annotation files, train2014/val2014 images, Karpathy JSONs."""
    from PIL import Image

    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    train_ids, val_ids = [9, 25, 30, 34], [42, 73, 74]
    for split, ids in (("train", train_ids), ("val", val_ids)):
        (root / f"{split}2014").mkdir()
        images, anns = [], []
        for i in ids:
            name = f"COCO_{split}2014_{i:012d}.jpg"
            Image.new("RGB", (8, 8), (i, 0, 0)).save(root / f"{split}2014" / name)
            images.append({"id": i, "file_name": name})
            anns += [{"id": 100 * i + k, "image_id": i, "caption": f"a photo {k} of image {i}"} for k in range(6)]
        (root / "annotations" / f"captions_{split}2014.json").write_text(json.dumps(
            {"images": images[::-1], "annotations": anns}))
    karpathy = [{"caption": "x", "image": f"train2014/COCO_train2014_{i:012d}.jpg", "image_id": f"coco_{i}"}
                for i in train_ids]
    karpathy += [{"caption": "y", "image": f"val2014/COCO_val2014_{i:012d}.jpg", "image_id": f"coco_{i}"}
                 for i in (73, 74)]  # restval
    (root / "coco_karpathy_train.json").write_text(json.dumps(karpathy))
    return root


def test_coco_training_set_reproduces_the_restval_bug_and_offers_the_fix(coco_root):
    images, captions = coco_training_images(coco_root, "paper")
    names = [ref.path.rsplit("/", 1)[1] for ref in images]
    # 4 train images, then the restval loop: val ids sorted (42, 73, 74); 73 and 74 are at positions 1 and 2, so the
    # paper's code appends coco_train[1] and coco_train[2] (image ids 25 and 30) a second time
    assert names == [f"COCO_train2014_{i:012d}.jpg" for i in (9, 25, 30, 34, 25, 30)]
    assert captions[0] == [f"a photo {k} of image 9" for k in range(5)], "the first five, in annotation order"
    fixed, _ = coco_training_images(coco_root, "val2014")
    assert [r.path.rsplit("/", 1)[1] for r in fixed][4:] == ["COCO_val2014_000000000073.jpg",
                                                             "COCO_val2014_000000000074.jpg"]
    imgs, pos, neg = coco_training_pairs(coco_root, text.scene_tagger(), restval="paper")
    assert len(pos) == len(neg) == len(imgs) == 30 and pos[0] == "a photo 0 of image 9"


def test_coco_retrieval_cleans_captions_to_forty_words(tmp_path):
    from PIL import Image

    (tmp_path / "val2014").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "val2014" / "a.jpg")
    long = " ".join(f"w{k}" for k in range(60))
    (tmp_path / "coco_karpathy_test.json").write_text(json.dumps([{"image": "val2014/a.jpg", "caption": [long] * 5}]))
    task = load_coco_retrieval(tmp_path)
    assert len(task.texts[0].split()) == 40


# -- training recipes and the protocol table ------------------------------------------------------------------
def test_recipes_follow_the_paper():
    config = LabclipConfig()
    assert (config.lr, config.epochs, config.batch_size, config.keep, config.drop_last) == (0.01, 50, 128, "last",
                                                                                          False)
    assert (LabclipConfig.coco().lr, LabclipConfig.coco().batch_size, LabclipConfig.coco().epochs) == (1e-3, 1024, 10)
    ft = FinetuneConfig.paper(batch_size=512)
    assert (ft.optimizer, ft.lr, ft.epochs, ft.batch_size, ft.init_logit_scale) == ("sgd", 0.01, 50, 512, 1.0)
    from labclip_utils.benchmarks.suite import synthetic_config

    assert synthetic_config("clevr").batch_size == 128 and synthetic_config("pug_spare").batch_size == 512
    offline = FinetuneConfig.offline()  # the protocol table states the offline CLIP-FT budget the code runs
    row = protocol_table().loc["CLIP-FT (full fine-tuning)", "this book, offline profile"]
    assert f"{offline.steps} steps of {offline.batch_size}" in row, row


def test_protocol_table_covers_every_point_and_every_experiment():
    table = protocol_table()
    assert list(table.columns) == ["paper's code", "this book, paper profile", "this book, offline profile",
                                   "why they differ"]
    choices = set(table.index)
    for needed in ("Train/val/test split (CLEVR, PUG)", "Hard negative", "CLEVR \"before\" score", "CLIP backbone",
                   "Which epoch is kept", "Precision", "COCO training set for A", "ARO VG-Relation / VG-Attribution",
                   "COCO-/Flickr30k-Order", "CLIP-FT (full fine-tuning)", "Which A for the synthetic rows"):
        assert needed in choices
    for experiment in EXPERIMENTS:
        assert choices_for(experiment)
    assert all(c.paper and c.paper_profile and c.offline for c in PROTOCOL)
    assert "this book, offline profile" not in protocol_table("paper")


def test_paper_numbers_sit_beside_ours_only_for_the_same_experiment():
    from labclip_utils.benchmarks.suite import headline_table

    rows = []
    for bench, subset, metric, experiment in (("clevr", "clevr", "accuracy", "clevr"),
                                              ("vg_attribution", "vg_attribution", "macro accuracy",
                                               "aro_vga, A from CLEVR-like scenes")):
        for model in ("CLIP", "LABCLIP"):
            rows.append({"benchmark": bench, "subset": subset, "metric": metric, "model": model, "value": 0.5,
                         "experiment": experiment})
    table = headline_table(pd.DataFrame(rows))
    assert table.loc["CLEVR swap test", "paper: LABCLIP"] == 0.95
    assert pd.isna(table.loc["ARO VG-Attribution (macro)", "paper: LABCLIP"]), "A from scenes is not the paper's"


# -- ties in retrieval ------------------------------------------------------------------------------------------
def _reference_t2i(image_features, text_features, per_image):
    """LABCLIP's ``get_results_t2i`` (``alignment/coco_utils.py``): argsort each caption's image scores, read the top
    K from the end."""
    similarity = (image_features @ text_features.T).T
    hits = {1: 0, 2: 0, 3: 0}
    for i in range(similarity.shape[0]):
        b = similarity[i].argsort()
        for k in hits:
            hits[k] += int(i // per_image in b[-k:])
    return {k: v / similarity.shape[0] for k, v in hits.items()}


def _reference_topk_i2t(image_features, text_features, text_image):
    """CLIP_benchmark's rule: an image is a hit at K when one of its captions is among ``topk`` of its row."""
    scores = image_features @ text_features.T
    hits = {1: 0, 2: 0, 3: 0}
    for i in range(scores.shape[0]):
        for k in hits:
            hits[k] += int(any(text_image[j] == i for j in scores[i].topk(k).indices.tolist()))
    return {k: v / scores.shape[0] for k, v in hits.items()}


def test_retrieval_ties_follow_the_papers_code_not_ours():
    import torch

    from labclip_utils import metrics

    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(3, 8, generator=g), dim=1)
    images = base[[0, 1, 2, 0, 1, 2]]  # every image twice: each caption ties with its image's duplicate
    texts = torch.nn.functional.normalize(base[[0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]]
                                          + 0.3 * torch.randn(12, 8, generator=g), dim=1)
    owner = torch.arange(12) // 2
    scores_t2i = texts @ images.T
    assert torch.equal(scores_t2i.argsort(dim=1), scores_t2i.argsort(dim=1, stable=True)), \
        "the fixture is small enough for torch's sort to be stable, so the reference is deterministic"
    reference = _reference_t2i(images, texts, per_image=2)
    ours = metrics.text_to_image_recall(images, texts, owner, ks=(1, 2, 3))
    assert ours == pytest.approx(reference)
    ours_before = metrics.text_to_image_recall(images, texts, owner, ks=(1, 2, 3), ties="correct")
    assert ours_before[1] > ours[1], "counting every tie as a hit inflates R@1 (the book's rule before)"
    ranks = metrics.ranks_of_true(scores_t2i, owner)
    assert ranks.tolist() == [int((scores_t2i[i].argsort().flip(0) == owner[i]).nonzero()) for i in range(12)]
    assert (ranks[:6] >= 1).all(), "the earlier copy of each image loses its tie to the later one"
    # image→text under torch.topk's order (CLIP_benchmark): the earlier tied caption ranks first
    assert metrics.image_to_text_recall(images, texts, owner, ks=(1, 2, 3), ties="first") == \
        pytest.approx(_reference_topk_i2t(images, texts, owner))
    with pytest.raises(ValueError, match="tie rule"):
        metrics.text_to_image_recall(images, texts, owner, ties="strict")
