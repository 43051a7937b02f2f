"""The modality gap: how far apart the image and text embedding clouds sit."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def centroid_gap(images: torch.Tensor, texts: torch.Tensor) -> float:
    """Distance between the centroids of the L2-normalised image and text embeddings (0 when they coincide)."""
    return (F.normalize(images, dim=-1).mean(0) - F.normalize(texts, dim=-1).mean(0)).norm().item()
