"""One encoder interface for every CLIP-like model in the book (real open_clip models and the miniature).

An :class:`Encoder` turns images and captions into L2-normalised embeddings, in batches, under
``torch.inference_mode()``, with duplicates encoded once and a progress bar. Everything after this step
works on embeddings only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from labclip_utils.io.hashing import code_digest
from labclip_utils.progress import tqdm

ImageLike = Image.Image | np.ndarray


def weights_fingerprint(module: torch.nn.Module) -> str:
    """A short hash of every parameter and buffer: two encoders with equal fingerprints compute the same thing."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        t = tensor.detach().to("cpu").contiguous()
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _image_key(image: ImageLike) -> bytes:
    if isinstance(image, Image.Image):
        data, meta = image.tobytes(), f"{image.mode}{image.size}"
    else:
        arr = np.ascontiguousarray(image)
        data, meta = arr.tobytes(), f"{arr.dtype}{arr.shape}"
    return hashlib.sha1(meta.encode() + data).digest()


def _unique(keys: Sequence[Any]) -> tuple[list[int], list[int]]:
    """Indices of first occurrences, and for every item the position of its unique representative."""
    first: dict[Any, int] = {}
    firsts, inverse = [], []
    for i, k in enumerate(keys):
        if k not in first:
            first[k] = len(firsts)
            firsts.append(i)
        inverse.append(first[k])
    return firsts, inverse


def pixel_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the image tower's first layer computes in: what pixels must be cast to.

    Not the first parameter's: open_clip at ``precision="fp16"`` keeps embeddings such as ``positional_embedding``
    in fp32 while its convolutions and linear layers are fp16, so pixels cast to the first parameter's dtype meet
    an fp16 ``conv1`` as fp32 and the forward pass fails.
    """
    tower = getattr(model, "visual", model)
    for module in tower.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            return module.weight.dtype
    return next(model.parameters()).dtype


class Encoder:
    """A frozen CLIP-like model behind one small interface.

    ``model`` must offer ``encode_image(pixels)`` and ``encode_text(tokens)``; ``preprocess`` maps a PIL image
    to a C×H×W tensor; ``tokenize`` maps a list of strings to a token tensor. ``id`` is stable across runs:
    model name, weights tag and a fingerprint of the weights. ``cache_dir`` is the cache folder it was loaded for
    (:func:`labclip_utils.models.load_encoder`), where its embeddings are cached unless a caller names a store.
    """

    cache_dir: Path | None = None

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenize: Callable[[list[str]], torch.Tensor],
        *,
        name: str,
        pretrained: str | None = None,
        device: str = "cpu",
        text_forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
        code_module: str = "labclip_utils.models.encoder",
        precision: str = "fp32",
    ) -> None:
        self.model = model.eval().to(device)
        #: An exact, faster replacement for ``model.encode_text`` (see :func:`openclip.trimmed_text_forward`).
        self.text_forward = text_forward or self.model.encode_text
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.preprocess = preprocess
        self.tokenize = tokenize
        self.name = name
        self.pretrained = pretrained
        #: The precision the model computes in ("fp32", or "fp16" as OpenAI's clip package runs); recorded in every
        #: result row, and part of the id (fp16 and fp32 give slightly different embeddings).
        self.precision = precision
        self.device = device
        self.fingerprint = weights_fingerprint(self.model)
        self._dtype = pixel_dtype(self.model)
        self.id = f"{name}/{pretrained or 'random-init'}/{self.fingerprint}" + (
            "" if precision == "fp32" else f"/{precision}")
        #: A hash of the code that computes the embeddings (this module and ``code_module``, transitively): part of
        #: every embedding cache key, so editing the forward pass can never reuse stale embeddings.
        self.code_id = code_digest("labclip_utils.models.encoder", code_module)
        #: How many batches went through each tower (tests use this to prove cache hits encode nothing).
        self.calls = {"image": 0, "text": 0}
        with torch.inference_mode():
            probe = self._encode_text_batch(self.tokenize(["a red cube"]))
        self.embed_dim = int(probe.shape[-1])
        #: The dtype text embeddings come out in (fp16 for open_clip at ``precision="fp16"``): what a layer stacked
        #: on the text tower, such as CLIP-FT's A, must compute in.
        self.text_dtype = probe.dtype
        self.calls["text"] = 0

    def __repr__(self) -> str:
        return f"Encoder({self.id!r}, embed_dim={self.embed_dim}, device={self.device!r})"

    @property
    def preprocess_id(self) -> str:
        """Identifies the image preprocessing (resize, crop, normalisation) for cache keys."""
        return hashlib.sha1(repr(self.preprocess).encode()).hexdigest()[:12]

    def _encode_image_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls["image"] += 1
        return self.model.encode_image(pixels.to(self.device, self._dtype))

    def _encode_text_batch(self, tokens: torch.Tensor) -> torch.Tensor:
        self.calls["text"] += 1
        return self.text_forward(tokens.to(self.device))

    def to_pixels(self, images: Sequence[ImageLike]) -> torch.Tensor:
        """Images (PIL or uint8 arrays) preprocessed into one N×C×H×W batch, as the model expects."""
        pil = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
        return torch.stack([self.preprocess(im.convert("RGB")) for im in pil])

    @torch.inference_mode()
    def encode_images(
        self, images: Sequence[ImageLike], batch_size: int | None = None, progress: bool = True
    ) -> torch.Tensor:
        """L2-normalised image embeddings (N×D, float32, on the CPU); identical images are encoded once.

        ``batch_size=None`` picks 32 on a CPU (larger batches are slower there) and 256 on a GPU.
        """
        batch_size = batch_size or (32 if self.device == "cpu" else 256)
        if len(images) == 0:
            return torch.empty(0, self.embed_dim)
        firsts, inverse = _unique([_image_key(im) for im in images])
        out = []
        for start in tqdm(range(0, len(firsts), batch_size), desc=f"encoding images ({self.name})",
                          disable=not progress, leave=False):
            batch = [images[i] for i in firsts[start : start + batch_size]]
            out.append(F.normalize(self._encode_image_batch(self.to_pixels(batch)).float(), dim=-1).cpu())
        return torch.cat(out)[inverse]

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256, progress: bool = True,
                     normalize: bool = True) -> torch.Tensor:
        """Text embeddings (N×D, float32, on the CPU), L2-normalised unless ``normalize=False``; repeated captions
        are encoded once."""
        if isinstance(texts, str):
            raise TypeError("encode_texts expects a list of strings, got one string (wrap it in a list)")
        if len(texts) == 0:
            return torch.empty(0, self.embed_dim)
        if any(not isinstance(t, str) for t in texts):
            raise TypeError("encode_texts expects a sequence of strings")
        firsts, inverse = _unique(list(texts))
        out = []
        for start in tqdm(range(0, len(firsts), batch_size), desc=f"encoding texts ({self.name})",
                          disable=not progress, leave=False):
            batch = [texts[i] for i in firsts[start : start + batch_size]]
            features = self._encode_text_batch(self.tokenize(batch)).float()
            out.append((F.normalize(features, dim=-1) if normalize else features).cpu())
        return torch.cat(out)[inverse]
