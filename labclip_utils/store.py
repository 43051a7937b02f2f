"""The embedding store: encode a dataset once per (encoder, preprocessing, content, split), then reuse it.

>>> emb = embed_scenes(encoder, dataset, split="test")     # encodes on the first call
>>> emb = embed_scenes(encoder, dataset, split="test")     # reads the cache: zero encoder passes
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from labclip_utils.cache import cached_tensors
from labclip_utils.models.encoder import Encoder
from labclip_utils.profile import current_profile
from labclip_utils.scenes.dataset import SceneDataset

STORE_VERSION = "1"
Dtype = Literal["float32", "float16"]


@dataclass
class EmbeddingStore:
    """Where cached embeddings live and in which precision they are kept (they are returned as float32)."""

    root: Path | None = None
    dtype: Dtype = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {self.dtype!r}")
        self.root = Path(self.root) if self.root is not None else current_profile().cache_dir / "embeddings"


@dataclass
class SceneEmbeddings:
    """Embeddings of a scene dataset, row ``i`` for scene ``i``.

    ``negatives`` rows are NaN where a scene has no hard negative (``has_negative`` is False there).
    """

    images: torch.Tensor
    captions: torch.Tensor
    negatives: torch.Tensor
    has_negative: torch.Tensor
    split: np.ndarray
    encoder_id: str
    from_cache: bool

    def __len__(self) -> int:
        return self.images.shape[0]

    def select(self, split: str) -> SceneEmbeddings:
        """Rows of one split."""
        mask = torch.as_tensor(self.split == split)
        return SceneEmbeddings(self.images[mask], self.captions[mask], self.negatives[mask],
                               self.has_negative[mask], self.split[mask.numpy()], self.encoder_id, self.from_cache)


def embed_scenes(
    encoder: Encoder,
    dataset: SceneDataset,
    split: str | None = None,
    *,
    store: EmbeddingStore | None = None,
    batch_size: int = 128,
    progress: bool = True,
) -> SceneEmbeddings:
    """Image, caption and hard-negative embeddings of ``dataset`` (one split or all), through the cache.

    The key covers the encoder's id (name, weights tag, weights hash), its preprocessing, the dataset's content
    hash, the split and the stored precision: change any of them and the cache misses.
    """
    store = store or EmbeddingStore()
    data = dataset.select(split) if split else dataset
    key = {
        "version": STORE_VERSION, "encoder": encoder.id, "preprocess": encoder.preprocess_id,
        "dataset": dataset.fingerprint(), "split": split or "all", "dtype": store.dtype, "n": len(data),
    }

    def compute() -> dict[str, torch.Tensor]:
        images = encoder.encode_images(data.images(progress=progress), batch_size=batch_size, progress=progress)
        has_neg = torch.tensor([n is not None for n in data.negatives])
        texts = list(data.captions) + [n for n in data.negatives if n is not None]
        encoded = encoder.encode_texts(texts, batch_size=2 * batch_size, progress=progress)
        negatives = torch.full_like(images, float("nan"))
        negatives[has_neg] = encoded[len(data) :]
        dtype = getattr(torch, store.dtype)
        return {"images": images.to(dtype), "captions": encoded[: len(data)].to(dtype),
                "negatives": negatives.to(dtype), "has_negative": has_neg}

    tensors, hit = cached_tensors(store.root, "scenes", key, compute)
    return SceneEmbeddings(
        images=tensors["images"].float(), captions=tensors["captions"].float(),
        negatives=tensors["negatives"].float(), has_negative=tensors["has_negative"].bool(),
        split=np.asarray(data.split), encoder_id=encoder.id, from_cache=hit,
    )


def embed_texts(
    encoder: Encoder, texts: list[str], *, store: EmbeddingStore | None = None, progress: bool = True
) -> torch.Tensor:
    """Embeddings of a list of captions, cached by the encoder id and the texts themselves."""
    import hashlib

    store = store or EmbeddingStore()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:24]
    key = {"version": STORE_VERSION, "encoder": encoder.id, "texts": digest, "n": len(texts), "dtype": store.dtype}
    dtype = getattr(torch, store.dtype)
    tensors, _ = cached_tensors(
        store.root, "texts", key, lambda: {"texts": encoder.encode_texts(texts, progress=progress).to(dtype)}
    )
    return tensors["texts"].float()
