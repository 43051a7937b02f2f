"""The modality gap: how far apart the image and text embedding clouds sit."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def centroid_gap(images: torch.Tensor, texts: torch.Tensor) -> float:
    """Distance between the centroids of the L2-normalised image and text embeddings (0 when they coincide)."""
    return (F.normalize(images, dim=-1).mean(0) - F.normalize(texts, dim=-1).mean(0)).norm().item()


def pair_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two equally long sets of embeddings (NaN rows stay NaN)."""
    return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)


def random_pair_cosines(a: torch.Tensor, b: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Cosines of each row of ``a`` with a random non-matching row of ``b`` (the background for true pairs)."""
    g = torch.Generator().manual_seed(seed)
    n = len(a)
    shift = torch.randint(1, n, (n,), generator=g)
    return pair_cosines(a, b[(torch.arange(n) + shift) % n])


def explained_variance(x: torch.Tensor, k: int = 20) -> torch.Tensor:
    """Share of the variance of a (normalised) cloud along its first ``k`` principal directions."""
    x = F.normalize(x, dim=-1)
    sv = torch.linalg.svdvals(x - x.mean(0))
    var = sv**2
    return (var / var.sum())[:k]


def effective_dimension(x: torch.Tensor) -> float:
    """Participation ratio (Σλ)² / Σλ² of the cloud's covariance spectrum: how many directions it really uses."""
    x = F.normalize(x, dim=-1)
    var = torch.linalg.svdvals(x - x.mean(0)) ** 2
    return (var.sum() ** 2 / (var**2).sum()).item()


def cone_cosine(x: torch.Tensor, seed: int = 0) -> float:
    """Median cosine between random pairs of one cloud: near 0 for a cloud spread over the sphere, high for the narrow
    *cone* that each of CLIP's modalities occupies (Liang et al., 2022)."""
    return random_pair_cosines(x, x, seed=seed).median().item()


def modality_separability(images: torch.Tensor, texts: torch.Tensor, seed: int = 0) -> float:
    """Held-out accuracy of a linear classifier telling normalised image embeddings from caption embeddings
    (0.5: the clouds overlap; 1.0: a hyperplane separates them, as it does for CLIP)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x = torch.cat([F.normalize(images, dim=-1), F.normalize(texts, dim=-1)]).numpy()
    y = [0] * len(images) + [1] * len(texts)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, random_state=seed, stratify=y)
    return float(LogisticRegression(max_iter=2000, random_state=seed).fit(x_tr, y_tr).score(x_te, y_te))


#: Gaps reported for real CLIP models, quoted (not measured here) with their source, for comparison only.
REPORTED_GAPS = {
    "CLIP ViT-B/32 (OpenAI) on MSCOCO, reported by Liang et al. (2022), 'Mind the Gap'": 0.82,
}
