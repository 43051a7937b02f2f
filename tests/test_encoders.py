"""The encoder interface (real open_clip architecture, random init) and the embedding store."""

from __future__ import annotations

import multiprocessing as mp
import time
import warnings

import numpy as np
import pytest
import torch

from labclip_utils.cache import cached_tensors, entry_path
from labclip_utils.models import load_encoder, resolve_quick_gelu
from labclip_utils.scenes import make_scenes
from labclip_utils.store import EmbeddingStore, embed_scenes, embed_texts


@pytest.fixture(scope="module")
def vit_b32():
    torch.manual_seed(0)
    return load_encoder("ViT-B-32", pretrained=None, device="cpu")


def test_vit_b32_random_init_shapes_and_unit_norm(vit_b32):
    ds = make_scenes(6, "clevr", 2, seed=0, image_size=224)
    images = vit_b32.encode_images(ds.images(), batch_size=4, progress=False)
    texts = vit_b32.encode_texts(ds.captions + ds.negatives, progress=False)
    assert images.shape == (6, 512) and texts.shape == (12, 512) and vit_b32.embed_dim == 512
    assert torch.allclose(images.norm(dim=-1), torch.ones(6), atol=1e-5)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(12), atol=1e-5)
    assert images.dtype == torch.float32 and images.device.type == "cpu"
    assert vit_b32.id.startswith("ViT-B-32/random-init/")
    assert "Normalize" in repr(vit_b32.preprocess) and vit_b32.tokenize(["a red cube"]).shape == (1, 77)


def test_quick_gelu_follows_the_weights_and_refuses_a_mismatch():
    assert resolve_quick_gelu("ViT-B-32", "openai", None) is True
    assert resolve_quick_gelu("ViT-B-32", "laion2b_s34b_b79k", None) is False
    assert resolve_quick_gelu("ViT-B-32", None, None) is False
    assert resolve_quick_gelu("ViT-B-32-quickgelu", None, None) is True
    with pytest.raises(ValueError, match="trained with QuickGELU"):
        load_encoder("ViT-B-32", "openai", quick_gelu=False)  # refused before any download


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown open_clip model"):
        load_encoder("ViT-Q-99")
    with pytest.raises(ValueError, match="unknown weights 'imagenet-xyz'"):
        load_encoder("ViT-B-32", "imagenet-xyz")


def test_duplicates_are_encoded_once(tiny_encoder):
    ds = make_scenes(3, seed=0)
    images = ds.images()
    out = tiny_encoder.encode_images([images[0], images[1], images[0], images[2], images[1]], batch_size=2,
                                     progress=False)
    assert tiny_encoder.calls["image"] == 2  # 3 unique images in batches of 2
    assert torch.equal(out[0], out[2]) and torch.equal(out[1], out[4])
    texts = tiny_encoder.encode_texts(["a", "b", "a"] * 100, batch_size=2, progress=False)
    assert tiny_encoder.calls["text"] == 1 and texts.shape == (300, 16)


def test_cache_hit_makes_zero_encoder_calls(tiny_encoder, tmp_path):
    ds = make_scenes(40, seed=0)
    store = EmbeddingStore(tmp_path)
    first = embed_scenes(tiny_encoder, ds, "train", store=store, progress=False)
    calls = dict(tiny_encoder.calls)
    assert calls["image"] > 0 and not first.from_cache
    second = embed_scenes(tiny_encoder, ds, "train", store=store, progress=False)
    assert tiny_encoder.calls == calls, "a cache hit must not touch the encoder"
    assert second.from_cache and torch.equal(first.images, second.images)
    assert torch.equal(first.negatives, second.negatives) and len(second) == int((ds.split == "train").sum())


def test_truncated_cache_file_warns_and_recomputes(tiny_encoder, tmp_path):
    ds = make_scenes(20, seed=0)
    store = EmbeddingStore(tmp_path)
    first = embed_scenes(tiny_encoder, ds, store=store, progress=False)
    (entry,) = (tmp_path / "embeddings").glob("*.safetensors")
    entry.write_bytes(entry.read_bytes()[:100])
    calls = tiny_encoder.calls["image"]
    with pytest.warns(RuntimeWarning, match=r"safetensors ignored and recomputed: it cannot be read"):
        again = embed_scenes(tiny_encoder, ds, store=store, progress=False)
    assert tiny_encoder.calls["image"] > calls and not again.from_cache
    assert torch.allclose(first.images, again.images)


def test_corrupted_bytes_fail_the_checksum(tmp_path):
    key = {"k": 1}
    cached_tensors(tmp_path, "t", key, lambda: {"x": torch.arange(1000.0)})
    path = entry_path(tmp_path, "t", key)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # flip bits inside the tensor data, header intact
    path.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checksum"):
        tensors, hit = cached_tensors(tmp_path, "t", key, lambda: {"x": torch.arange(1000.0)})
    assert not hit and torch.equal(tensors["x"], torch.arange(1000.0))


def test_changing_preprocessing_or_content_or_split_misses(tiny_encoder, tmp_path):
    from torchvision import transforms

    store = EmbeddingStore(tmp_path)
    ds = make_scenes(20, seed=0)
    embed_scenes(tiny_encoder, ds, store=store, progress=False)
    assert embed_scenes(tiny_encoder, ds, store=store, progress=False).from_cache
    assert not embed_scenes(tiny_encoder, make_scenes(20, seed=1), store=store, progress=False).from_cache
    assert not embed_scenes(tiny_encoder, ds.with_settings(negative="add_object"), store=store,
                            progress=False).from_cache
    assert not embed_scenes(tiny_encoder, ds, "test", store=store, progress=False).from_cache
    tiny_encoder.preprocess = transforms.Compose([transforms.Resize(32), transforms.ToTensor()])
    assert not embed_scenes(tiny_encoder, ds, store=store, progress=False).from_cache


def test_float16_store_returns_float32(tiny_encoder, tmp_path):
    ds = make_scenes(10, seed=0)
    half = embed_scenes(tiny_encoder, ds, store=EmbeddingStore(tmp_path, dtype="float16"), progress=False)
    full = embed_scenes(tiny_encoder, ds, store=EmbeddingStore(tmp_path, dtype="float32"), progress=False)
    assert half.images.dtype == torch.float32
    assert torch.allclose(half.images, full.images, atol=2e-3) and not torch.equal(half.images, full.images)
    with pytest.raises(ValueError, match="dtype"):
        EmbeddingStore(tmp_path, dtype="int8")


def test_missing_negatives_are_nan(tiny_encoder, tmp_path):
    ds = make_scenes(60, "clevr", 3, seed=0, colors=["red", "blue"])
    emb = embed_scenes(tiny_encoder, ds, store=EmbeddingStore(tmp_path), progress=False)
    missing = ~emb.has_negative
    assert missing.any() and torch.isnan(emb.negatives[missing]).all()
    assert not torch.isnan(emb.negatives[~missing]).any()


def test_embed_texts_cached_and_keys_cannot_collide(tiny_encoder, tmp_path):
    store = EmbeddingStore(tmp_path)
    a = embed_texts(tiny_encoder, ["a red cube", "a blue sphere"], store=store, progress=False)
    calls = tiny_encoder.calls["text"]
    b = embed_texts(tiny_encoder, ["a red cube", "a blue sphere"], store=store, progress=False)
    assert tiny_encoder.calls["text"] == calls and torch.equal(a, b)
    # two lists whose newline-joined forms are equal must not share an entry
    first = embed_texts(tiny_encoder, ["a red cube", "a blue\ncube"], store=store, progress=False)
    second = embed_texts(tiny_encoder, ["a red cube\na blue", "cube"], store=store, progress=False)
    assert not torch.equal(first, second)
    assert torch.equal(second, tiny_encoder.encode_texts(["a red cube\na blue", "cube"], progress=False))
    with pytest.raises(TypeError, match="one string"):
        embed_texts(tiny_encoder, "a red cube", store=store)
    with pytest.raises(ValueError, match="non-empty string"):
        embed_texts(tiny_encoder, ["a red cube", "  "], store=store)


def _slow_compute_worker(root, log):
    def compute():
        with open(log, "a") as f:
            f.write("computed\n")
        time.sleep(1.0)
        return {"x": torch.ones(3)}

    cached_tensors(root, "race", {"same": "key"}, compute)


def test_parallel_processes_compute_an_entry_once(tmp_path):
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_compute_worker, args=(tmp_path, log)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert log.read_text().count("computed") == 1
    assert not list((tmp_path / "race").glob("*.tmp"))


def test_no_warning_on_clean_hit(tiny_encoder, tmp_path):
    ds = make_scenes(10, seed=0)
    store = EmbeddingStore(tmp_path)
    embed_scenes(tiny_encoder, ds, store=store, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert embed_scenes(tiny_encoder, ds, store=store, progress=False).from_cache
    assert isinstance(np.asarray(ds.split), np.ndarray)


def test_trimmed_text_forward_matches_open_clip(vit_b32):
    texts = ["a red cube", "a blue sphere and a green cone and a gray cylinder and a yellow cube " * 3, "x"]
    tokens = vit_b32.tokenize(texts)
    assert vit_b32.text_forward is not vit_b32.model.encode_text, "the fast path should be active for ViT-B-32"
    with torch.inference_mode():
        ref, fast = vit_b32.model.encode_text(tokens), vit_b32.text_forward(tokens)
    assert torch.allclose(ref, fast, atol=1e-4)
