"""The miniature CLIP: tokenizer, shapes, determinism, cache reuse, and that held-out combinations stay unseen.

The full model is never trained here (experiments/miniature.py does that); a tiny configuration runs the same
code in about a second, trained once per session and shared by the tests that need it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from labclip_utils.models import CUSTOM_ENCODERS, load_encoder
from labclip_utils.models.encoder import weights_fingerprint
from labclip_utils.models.miniature import MiniatureConfig, MiniTokenizer, build_miniature
from labclip_utils.models.miniature_training import _text_combos, load_miniature, train_miniature, training_scenes
from labclip_utils.models.openclip import text_forward
from labclip_utils.scenes import SHAPES, make_scenes
from labclip_utils.scenes.splits import bag_key, bag_split

WORDS = ("red", "blue", "gray", "cube", "sphere", "cylinder")


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    """One cache folder holding the tiny miniature of seed 0, trained once for the whole session."""
    root = tmp_path_factory.mktemp("miniature")
    encoder = load_miniature("seed0", config=MiniatureConfig.tiny(), cache_dir=root, progress=False)
    assert encoder.trained_now
    return root


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


def test_none_means_random_init_and_shapes_are_unit_norm():
    enc = load_miniature(None, config=MiniatureConfig.tiny())
    assert enc.id.startswith("miniature/random-init/") and not enc.trained_now
    ds = make_scenes(5, seed=0)
    images = enc.encode_images(list(ds.images()), progress=False)
    texts = enc.encode_texts(ds.captions, progress=False)
    assert images.shape == (5, 32) and texts.shape == (5, 32) and enc.embed_dim == 32
    assert torch.allclose(images.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert "MiniPreprocess(size=64" in repr(enc.preprocess)
    assert load_encoder("miniature", None, "cpu").id.startswith("miniature/random-init/")


@pytest.mark.parametrize("pool", ["eot", "mean"])
def test_trimmed_text_forward_is_exact(pool):
    model, tok = build_miniature(replace(MiniatureConfig.tiny(), text_pool=pool))
    tokens = tok(["a red cube", "a gray cone and a blue sphere and a cyan cylinder"])
    with torch.no_grad():
        trimmed = text_forward(model.text_tower, tokens, pool)
        if pool == "eot":
            full = model.text_tower(tokens)
        else:  # the same mean over the full 32-token sequence, padding masked out
            t = model.text_tower
            x = t.ln_final(t.transformer(t.token_embedding(tokens) + t.positional_embedding, attn_mask=t.attn_mask))
            mask = (torch.arange(tokens.shape[1])[None] <= tokens.argmax(-1)[:, None]).float()
            full = ((x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)) @ t.text_projection
    assert torch.allclose(trimmed, full, atol=1e-5)


def test_same_seed_same_weights_other_seed_other_weights(tiny_cache):
    a = load_miniature("seed0", config=MiniatureConfig.tiny(), cache_dir=tiny_cache, progress=False)
    assert not a.trained_now
    b, _ = train_miniature(MiniatureConfig.tiny(seed=0), progress=False)
    c, _ = train_miniature(MiniatureConfig.tiny(seed=4), progress=False)
    assert weights_fingerprint(a.model) == weights_fingerprint(b), "training is deterministic"
    assert weights_fingerprint(b) != weights_fingerprint(c)


def test_cache_is_reused_and_keyed_by_config(tiny_cache):
    again = load_miniature("seed0", config=MiniatureConfig.tiny(), cache_dir=tiny_cache, progress=False)
    assert not again.trained_now and again.id.startswith("miniature/seed0/")
    assert set(again.history) == {"image_tower", "text_tower", "heads", "timings"}
    assert len(again.history["heads"]["loss"]) == MiniatureConfig.tiny().head_steps
    other = replace(MiniatureConfig.tiny(), centre=True, logit_scale=None)
    changed = load_miniature("seed0", config=other, cache_dir=tiny_cache, progress=False)
    assert changed.trained_now and changed.id != again.id
    # the default keeps CLIP's final temperature fixed and its towers uncentred; the variant learns and centres
    assert again.history["heads"]["logit_scale"] == pytest.approx([100.0] * other.head_steps), "fixed scale"
    assert torch.equal(again.model.image_mean, torch.zeros(other.tower_dim)), "uncentred towers"
    assert changed.history["heads"]["logit_scale"][0] == pytest.approx(1 / 0.07, rel=1e-3)
    assert changed.history["heads"]["logit_scale"][-1] != changed.history["heads"]["logit_scale"][0]
    assert changed.model.image_mean.abs().sum() > 0


def test_registered_as_an_encoder_and_names_checked():
    assert CUSTOM_ENCODERS["miniature"] is load_miniature
    with pytest.raises(ValueError, match="seed<N>"):
        load_miniature("openai")
    with pytest.raises(ValueError, match="disagrees"):
        load_miniature("seed3", config=MiniatureConfig.tiny(seed=1))


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
