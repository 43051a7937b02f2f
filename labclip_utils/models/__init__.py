"""Encoders: ``load_encoder(name, pretrained)`` for real open_clip models and the book's miniature CLIP.

``pretrained=None`` means random init for every encoder (the controls of every probe); a weights tag, or a
checkpoint file, gives trained weights.

>>> enc = load_encoder("ViT-B-32", "openai")   # paper profile (downloads the weights once)
>>> enc = load_encoder("ViT-B-32")             # same architecture, random init (tests, controls)
>>> enc = load_encoder("miniature", "seed0")   # offline profile: trained on the CPU, cached
>>> enc = load_encoder("miniature")            # the miniature's architecture, random init
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labclip_utils.models.encoder import Encoder, weights_fingerprint
from labclip_utils.models.miniature_training import load_miniature
from labclip_utils.models.openclip import load_open_clip, resolve_quick_gelu
from labclip_utils.profile import default_cache_dir, resolve_device

#: Encoders that are not plain open_clip names, by name. Each loader takes (pretrained, device, cache_dir).
CUSTOM_ENCODERS: dict[str, Callable[..., Encoder]] = {"miniature": load_miniature}


def load_encoder(
    name: str, pretrained: str | None = None, device: str | None = None, *, quick_gelu: bool | None = None,
    precision: str = "fp32", cache_dir: str | Path | None = None,
) -> Encoder:
    """Load an encoder by name: a custom one (``"miniature"``) or any open_clip model.

    ``pretrained`` is a weights tag (``"openai"``, ``"laion2b_s34b_b79k"``, ``"seed0"`` for the miniature...) or a
    checkpoint file; ``None`` gives random init. ``device=None`` reads ``$LABCLIP_DEVICE`` (default ``auto``: CUDA when
    available). ``precision``
    (``"fp32"``, ``"fp16"`` or ``"bf16"``) applies to open_clip models; the miniature always computes in fp32.
    ``cache_dir`` is where the encoder's trained weights (the miniature's) and embeddings are cached: a chapter
    passes its profile's; default :func:`labclip_utils.profile.default_cache_dir`.
    """
    device = resolve_device(device)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if name in CUSTOM_ENCODERS:
        encoder = CUSTOM_ENCODERS[name](pretrained=pretrained, device=device, cache_dir=cache_dir)
    else:
        encoder = load_open_clip(name, pretrained, device=device, quick_gelu=quick_gelu, precision=precision)
    encoder.cache_dir = cache_dir
    return encoder


__all__ = ["CUSTOM_ENCODERS", "Encoder", "load_encoder", "load_miniature", "resolve_quick_gelu",
           "weights_fingerprint"]
