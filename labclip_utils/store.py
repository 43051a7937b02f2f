"""The embedding store: every image and caption is encoded once per (encoder, its code, preprocessing, content).

One function, :func:`encode`, serves everything that needs embeddings: benchmark tasks, scene datasets and plain
caption lists. Its key is built from content, never from names: the encoder's id (name, weights tag, a hash of the
weights) and :func:`~labclip_utils.cache.code_digest` of its forward code, the preprocessing, each image's
signature (a file's path, size and modification time; a generated scene's record and the renderer's code) and the
captions themselves.

>>> emb = embed_scenes(encoder, dataset)      # encodes on the first call
>>> emb = embed_scenes(encoder, dataset)      # reads the cache: zero encoder passes
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from labclip_utils.cache import cached_tensors
from labclip_utils.io.hashing import key_digest
from labclip_utils.models.encoder import Encoder
from labclip_utils.profile import default_cache_dir
from labclip_utils.progress import tqdm
from labclip_utils.scenes.splits import SPLITS
from labclip_utils.tasks import ImageSource, images_signature, scene_request, unique_images

Dtype = Literal["float32", "float16"]


@dataclass
class EmbeddingStore:
    """Where cached embeddings live and in which precision they are kept (they are returned as float32)."""

    root: Path
    dtype: Dtype = "float32"

    def __post_init__(self) -> None:
        if self.dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {self.dtype!r}")
        self.root = Path(self.root)

    @classmethod
    def of(cls, encoder: Encoder) -> EmbeddingStore:
        """The store an encoder's embeddings go to when a caller names none: ``<cache>/embeddings``, with the cache
        folder the encoder was loaded for (:func:`labclip_utils.models.load_encoder`'s ``cache_dir``)."""
        return cls((encoder.cache_dir or default_cache_dir()) / "embeddings")


@dataclass
class Embeddings:
    """Unit-norm embeddings of the unique images and unique texts of a request (look rows up with
    :meth:`image_rows` and :meth:`text`), with the texts' norms before normalisation (the paper's CLEVR baseline
    scores un-normalised text)."""

    images: torch.Tensor
    texts: torch.Tensor
    text_norms: torch.Tensor
    text_row: dict[str, int]
    encoder_id: str
    from_cache: bool
    image_row: dict[ImageSource, int]

    def image_rows(self, refs: Sequence[ImageSource]) -> torch.Tensor:
        """The embeddings of ``refs`` (each must be one of the encoded images)."""
        try:
            return self.images[torch.tensor([self.image_row[r] for r in refs], dtype=torch.long)]
        except KeyError as err:
            raise KeyError(f"image {err.args[0]!r} was not encoded") from None

    def text(self, captions: Sequence[str]) -> torch.Tensor:
        """The embeddings of ``captions`` (each must be one of the encoded texts)."""
        missing = [c for c in captions if c not in self.text_row]
        if missing:
            raise KeyError(f"{len(missing)} caption(s) were not encoded, e.g. {missing[0]!r}")
        return self.texts[torch.tensor([self.text_row[c] for c in captions], dtype=torch.long)]


def encode_images(encoder: Encoder, refs: Sequence[ImageSource], chunk: int = 256, progress: bool = True,
                  desc: str = "encoding images") -> torch.Tensor:
    """Load and encode images chunk by chunk, so memory stays bounded on 5,000-image sets."""
    out = [torch.empty(0, encoder.embed_dim)]
    for start in tqdm(range(0, len(refs), chunk), desc=desc, disable=not progress, leave=False):
        images = [r.load() for r in refs[start : start + chunk]]
        out.append(encoder.encode_images(images, progress=False))
    return torch.cat(out)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of captions, got one string (wrap it in a list)")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"caption {bad[0]} is {texts[bad[0]]!r}: every caption must be a non-empty string")
    return texts


def encode(encoder: Encoder, images: Sequence[ImageSource], texts: Sequence[str], *,
           store: EmbeddingStore | None = None, progress: bool = True) -> Embeddings:
    """Every unique image and text of the request, encoded once per (encoder, code, preprocessing, content)."""
    store = store or EmbeddingStore.of(encoder)
    unique, _ = unique_images(images)
    texts = list(dict.fromkeys(_check_texts(texts)))
    key = {"encoder": encoder.id, "code": encoder.code_id, "preprocess": encoder.preprocess_id,
           "images": images_signature(unique), "texts": key_digest(texts), "n": [len(unique), len(texts)],
           "dtype": store.dtype}
    dtype = getattr(torch, store.dtype)

    def compute() -> dict[str, torch.Tensor]:
        raw = encoder.encode_texts(texts, progress=progress, normalize=False) if texts else torch.empty(
            0, encoder.embed_dim)
        norms = raw.norm(dim=-1)
        return {"images": encode_images(encoder, unique, progress=progress).to(dtype),
                "texts": torch.nn.functional.normalize(raw, dim=-1).to(dtype), "text_norms": norms}

    tensors, hit = cached_tensors(store.root, "embeddings", key, compute)
    return Embeddings(tensors["images"].float(), tensors["texts"].float(), tensors["text_norms"].float(),
                      {t: i for i, t in enumerate(texts)}, encoder.id, hit, {r: i for i, r in enumerate(unique)})


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
        """Rows of one split (``"train"``, ``"val"`` or ``"test"``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        mask = torch.as_tensor(self.split == split)
        return SceneEmbeddings(self.images[mask], self.captions[mask], self.negatives[mask],
                               self.has_negative[mask], self.split[mask.numpy()], self.encoder_id, self.from_cache)

    def triplet(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(images, captions, negatives)``, what LABCLIP is fitted on."""
        return self.images, self.captions, self.negatives


def embed_scenes(encoder: Encoder, dataset, split: str | None = None, *, store: EmbeddingStore | None = None,
                 progress: bool = True) -> SceneEmbeddings:
    """Image, caption and hard-negative embeddings of ``dataset`` (one split or all), through the store."""
    data = dataset.select(split) if split else dataset
    if len(data) == 0:
        raise ValueError(f"{dataset.name}: split {split!r} has no scenes")
    refs, texts = scene_request(data)
    emb = encode(encoder, refs, texts, store=store, progress=progress)
    images = emb.image_rows(refs)
    captions = emb.text(data.captions)
    has_neg = torch.tensor([n is not None for n in data.negatives])
    negatives = torch.full_like(captions, float("nan"))
    if has_neg.any():
        negatives[has_neg] = emb.text([n for n in data.negatives if n is not None])
    return SceneEmbeddings(images, captions, negatives, has_neg, np.asarray(data.split), encoder.id, emb.from_cache)


def embed_texts(encoder: Encoder, texts: Sequence[str], *, store: EmbeddingStore | None = None,
                progress: bool = True) -> torch.Tensor:
    """Embeddings of a list of captions (row ``i`` for ``texts[i]``), through the store."""
    texts = _check_texts(texts)
    return encode(encoder, [], texts, store=store, progress=progress).text(texts)
