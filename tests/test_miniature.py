"""The miniature CLIP: tokenizer, shapes, determinism, cache reuse, and that held-out combinations stay unseen.

The full model is never trained here (benchmarks/miniature.py does that); a tiny configuration runs the same
code in about a second.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labclip_utils.models import CUSTOM_ENCODERS
from labclip_utils.models.miniature import (
    MiniatureConfig,
    MiniTokenizer,
    build_miniature,
    load_miniature,
    random_init_miniature,
    text_tower_forward,
)
from labclip_utils.models.miniature_training import _text_combos, train_miniature, training_scenes
from labclip_utils.scenes import SHAPES, make_scenes
from labclip_utils.scenes.splits import bag_key, bag_split

WORDS = ("red", "blue", "gray", "cube", "sphere", "cylinder")


def test_tokenizer_keeps_clip_order_and_refuses_unknown_words():
    tok = MiniTokenizer(WORDS, context_length=16)
    ids = tok(["a red cube and a blue sphere", "red cube and blue sphere"])
    assert ids.shape == (2, 16)
    assert int(ids[0].max()) == tok.vocab_size - 1, "end-of-text must be the largest id (argmax pooling)"
    assert (ids[0, ids[0].argmax() + 1 :] == 0).all(), "padding is 0"
    with pytest.raises(ValueError, match="only knows the words.*'a green cube'"):
        tok(["a red cube", "a green cube"])
    with pytest.raises(ValueError, match="too long"):
        tok([" and ".join(["a red cube"] * 10)])


def test_shapes_and_unit_norm():
    enc = random_init_miniature(MiniatureConfig.tiny())
    ds = make_scenes(5, seed=0)
    images = enc.encode_images(list(ds.images()), progress=False)
    texts = enc.encode_texts(ds.captions, progress=False)
    assert images.shape == (5, 32) and texts.shape == (5, 32) and enc.embed_dim == 32
    assert torch.allclose(images.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert "MiniPreprocess(size=64" in repr(enc.preprocess)


def test_trimmed_text_forward_is_exact():
    model, tok = build_miniature(MiniatureConfig.tiny())
    tokens = tok(["a red cube", "a gray cone and a blue sphere and a cyan cylinder"])
    with torch.no_grad():
        assert torch.allclose(text_tower_forward(model.text_tower, tokens), model.text_tower(tokens), atol=1e-6)


def test_same_seed_same_weights_other_seed_other_weights():
    from labclip_utils.models.encoder import weights_fingerprint

    a, _ = train_miniature(MiniatureConfig.tiny(seed=3), progress=False)
    b, _ = train_miniature(MiniatureConfig.tiny(seed=3), progress=False)
    c, _ = train_miniature(MiniatureConfig.tiny(seed=4), progress=False)
    assert weights_fingerprint(a) == weights_fingerprint(b)
    assert weights_fingerprint(a) != weights_fingerprint(c)


def test_cache_is_reused_and_keyed_by_config(tmp_path):
    first = load_miniature(config=MiniatureConfig.tiny(), cache_dir=tmp_path, progress=False)
    again = load_miniature(config=MiniatureConfig.tiny(), cache_dir=tmp_path, progress=False)
    assert first.trained_now and not again.trained_now
    assert first.id == again.id and first.id.startswith("miniature/seed0/")
    assert set(again.history) == {"image_tower", "text_tower", "heads", "timings"}
    assert len(again.history["heads"]["loss"]) == MiniatureConfig.tiny().head_steps
    other = load_miniature(config=MiniatureConfig.tiny(seed=1), cache_dir=tmp_path, progress=False)
    assert other.trained_now and other.id != first.id
    assert len(list((tmp_path / "miniature").glob("*.safetensors"))) == 2


def test_registered_as_an_encoder_and_names_checked():
    assert CUSTOM_ENCODERS["miniature"] is load_miniature
    with pytest.raises(ValueError, match="seed<N>"):
        load_miniature("openai")


def test_held_out_combinations_never_reach_training():
    cfg = MiniatureConfig.tiny()
    ds = training_scenes(cfg)
    assert set(ds.split) == {"train"}
    assert all(bag_split(bag_key(p)) == "train" for p in ds.pairs)
    rng = np.random.default_rng(0)
    for pairs in _text_combos(cfg, rng, 300):
        assert len(pairs) >= 2
        for i in range(len(pairs)):
            for j in range(i + 1, len(pairs)):
                assert bag_split(bag_key((pairs[i], pairs[j]))) == "train"
    assert cfg.shapes == SHAPES
