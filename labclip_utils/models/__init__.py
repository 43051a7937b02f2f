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

from labclip_utils.models.encoder import Encoder, weights_fingerprint
from labclip_utils.models.miniature_training import load_miniature
from labclip_utils.models.openclip import load_open_clip, resolve_quick_gelu
from labclip_utils.profile import resolve_device

#: Encoders that are not plain open_clip names, by name. Each loader takes (pretrained, device).
CUSTOM_ENCODERS: dict[str, Callable[..., Encoder]] = {"miniature": load_miniature}


def load_encoder(
    name: str, pretrained: str | None = None, device: str = "auto", *, quick_gelu: bool | None = None,
    precision: str = "fp32",
) -> Encoder:
    """Load an encoder by name: a custom one (``"miniature"``) or any open_clip model.

    ``pretrained`` is a weights tag (``"openai"``, ``"laion2b_s34b_b79k"``, ``"seed0"`` for the miniature...) or a
    checkpoint file; ``None`` gives random init. ``device="auto"`` picks CUDA when available. ``precision``
    (``"fp32"``, ``"fp16"`` or ``"bf16"``) applies to open_clip models; the miniature always computes in fp32.
    """
    device = resolve_device(device)
    if name in CUSTOM_ENCODERS:
        return CUSTOM_ENCODERS[name](pretrained=pretrained, device=device)
    return load_open_clip(name, pretrained, device=device, quick_gelu=quick_gelu, precision=precision)


__all__ = ["CUSTOM_ENCODERS", "Encoder", "load_encoder", "load_miniature", "resolve_quick_gelu",
           "weights_fingerprint"]
