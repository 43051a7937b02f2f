"""LABCLIP: one D×D matrix A on the text embedding (initialised to the identity) and a learnable temperature,
trained on frozen embeddings with attribute-swapped hard negatives.

The loss follows the paper's code (``constrastive_loss_with_negatives``): for a batch of B images, the texts are
``[A·positives; A·negatives]`` (2B rows, each re-normalised); image→text cross-entropy runs over all 2B texts,
text→image over the B positives only; the two are averaged. ``loss="sb"`` is the paper's SB ablation: the plain
symmetric CLIP loss over the B positives, no negatives.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from labclip_utils.binding import swap_accuracy

Loss = Literal["hnb", "sb"]


class Labclip(nn.Module):
    """``text ↦ normalize(A · text)`` plus the logit scale ``exp(t)``; images are never transformed."""

    def __init__(self, dim: int, init_logit_scale: float = 1.0) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))
        self.t = nn.Parameter(torch.tensor(math.log(init_logit_scale)))

    @property
    def A(self) -> torch.Tensor:
        return self.linear.weight

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.t.exp()

    def forward(self, texts: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(texts), dim=-1)

    @torch.no_grad()
    def map_texts(self, texts: torch.Tensor) -> torch.Tensor:
        """Apply A to (already normalised) text embeddings; NaN rows stay NaN."""
        return self(texts.to(self.A.dtype))


def hard_negative_loss(images: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                       logit_scale: torch.Tensor) -> torch.Tensor:
    """The paper's loss: i2t over [B positives; B hard negatives], t2i over the B positives, averaged."""
    b = images.shape[0]
    logits = logit_scale * images @ torch.cat([positives, negatives]).T  # B × 2B
    target = torch.arange(b, device=images.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits[:, :b].T, target))


def symmetric_loss(images: torch.Tensor, positives: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """The SB ablation: CLIP's symmetric loss over B image–caption pairs, no hard negatives."""
    logits = logit_scale * images @ positives.T
    target = torch.arange(images.shape[0], device=images.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


@dataclass(frozen=True)
class LabclipConfig:
    """Training settings; the defaults are the paper's synthetic-data recipe (Adam, lr 0.01, 50 epochs, batch 128,
    t initialised at 0 so the logit scale starts at 1)."""

    loss: Loss = "hnb"
    lr: float = 1e-2
    epochs: int = 50
    batch_size: int = 128
    init_logit_scale: float = 1.0
    seed: int = 0
    keep: Literal["best_val", "last"] = "best_val"
    #: Stop as soon as the validation swap accuracy reaches this value (checked every ``eval_every`` steps).
    target_val_swap: float | None = None
    #: Validate every this many optimiser steps as well as at the end of each epoch (None: per epoch only).
    eval_every: int | None = None


@dataclass
class FitResult:
    """The fitted map, its per-epoch history and which epoch was kept."""

    model: Labclip
    history: pd.DataFrame
    best_epoch: int
    config: LabclipConfig
    seconds: float


Triplet = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _valid(triplet: Triplet) -> Triplet:
    images, pos, neg = triplet
    keep = ~torch.isnan(neg).any(dim=1)
    return images[keep].float(), pos[keep].float(), neg[keep].float()


def fit_labclip(train: Triplet, val: Triplet | None = None, config: LabclipConfig = LabclipConfig(),
                progress: bool = True) -> FitResult:
    """Fit A (and t) on in-memory embeddings ``(images, positives, negatives)``, validating each epoch.

    Rows whose negative is NaN are dropped. With ``keep="best_val"`` the A with the best validation swap accuracy
    is returned (the last one if there is no validation set).
    """
    if config.loss not in ("hnb", "sb"):
        raise ValueError(f"unknown loss {config.loss!r}; choose 'hnb' or 'sb'")
    images, pos, neg = _valid(train)
    val = _valid(val) if val is not None else None
    gen = torch.Generator().manual_seed(config.seed)
    model = Labclip(images.shape[1], config.init_logit_scale)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    rows, best, best_state = [], -1.0, None
    start = time.perf_counter()
    n, bs = len(images), config.batch_size
    step, stop = 0, False

    def validate() -> float:
        nonlocal best, best_state
        with torch.no_grad():
            acc = swap_accuracy(val[0], model(val[1]), model(val[2]))
        if acc > best:
            best, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
        return acc

    for epoch in tqdm(range(1, config.epochs + 1), desc=f"LABCLIP ({config.loss})", disable=not progress, leave=False):
        order = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        for s in range(0, n - bs + 1 if n >= bs else 1, bs):
            idx = order[s : s + bs]
            if config.loss == "hnb":
                loss = hard_negative_loss(images[idx], model(pos[idx]), model(neg[idx]), model.logit_scale)
            else:
                loss = symmetric_loss(images[idx], model(pos[idx]), model.logit_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, batches, step = total + loss.item(), batches + 1, step + 1
            if val is not None and config.eval_every and step % config.eval_every == 0:
                acc = validate()  # finer-grained best-on-validation selection, and early stopping
                if config.target_val_swap is not None and acc >= config.target_val_swap:
                    stop = True
                    break
        row = {"epoch": epoch, "loss": total / max(1, batches), "logit_scale": model.logit_scale.item(),
               "seconds": time.perf_counter() - start, "steps": step}
        if val is not None:
            row["val_swap"] = validate()
            stop = stop or (config.target_val_swap is not None and best >= config.target_val_swap)
        rows.append(row)
        if stop:
            break
    history = pd.DataFrame(rows).set_index("epoch")
    best_epoch = int(history.index[-1])
    if config.keep == "best_val" and best_state is not None:
        model.load_state_dict(best_state)
        best_epoch = int(history["val_swap"].idxmax())
    return FitResult(model.eval(), history, best_epoch, config, time.perf_counter() - start)


def matrix_summary(A: torch.Tensor) -> dict[str, float]:
    """How far A is from the identity: ‖A − I‖_F, the mean diagonal entry and the mean |off-diagonal| entry."""
    A = A.detach().float()
    eye = torch.eye(A.shape[0])
    off = A - torch.diag(torch.diag(A))
    return {"‖A − I‖_F": (A - eye).norm().item(), "mean diagonal": A.diag().mean().item(),
            "mean |off-diagonal|": off.abs().sum().item() / (A.numel() - A.shape[0])}


def synthetic_binding_embeddings(n: int, dim: int = 512, code_dim: int = 16, seed: int = 0,
                                 noise: float = 0.0) -> Triplet:
    """Unit-norm (images, captions, swapped captions) where binding is linearly recoverable but misaligned.

    Each image carries a shared "bag of words" part and a binding code ``c``; its caption carries the same bag
    and ``R c`` (R swaps pairs of code dimensions), its swapped caption ``-R c``. Under A = I the swap test is
    at chance (``c·Rc`` is symmetric around 0); A = R^T on the code dimensions solves it. ``noise`` adds
    independent noise to each caption's code, so that no A reaches 1.0. For tests and timing.
    """
    if code_dim % 2 or code_dim >= dim:
        raise ValueError("code_dim must be even and smaller than dim")
    g = torch.Generator().manual_seed(seed)
    bow = torch.randn(n, dim - code_dim, generator=g)
    code = torch.randn(n, code_dim, generator=g)
    perm = torch.arange(code_dim).reshape(-1, 2).flip(1).flatten()
    images = F.normalize(torch.cat([bow, code], 1), dim=-1)
    jitter = noise * torch.randn(2, n, code_dim, generator=g)
    positives = F.normalize(torch.cat([bow, 0.5 * (code[:, perm] + jitter[0])], 1), dim=-1)
    negatives = F.normalize(torch.cat([bow, 0.5 * (-code[:, perm] + jitter[1])], 1), dim=-1)
    return images, positives, negatives


def save_labclip(path: str | Path, model: Labclip, **meta: str | int | float) -> Path:
    """Write A and t as safetensors, with metadata (encoder id, D, the data it was fitted on...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"format": "labclip-1", "dim": model.A.shape[0], **meta}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({"linear.weight": model.A.detach().contiguous(), "t": model.t.detach().reshape(1)}, tmp,
              metadata={"labclip": json.dumps(info, default=str)})
    tmp.replace(path)
    return path


def load_labclip(path: str | Path, expected_dim: int | None = None) -> tuple[Labclip, dict]:
    """Read a map written by :func:`save_labclip`; errors name the file and what is wrong with it.

    ``expected_dim`` (the embedding size of the encoder it will be used with) is checked against the file.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("labclip", "{}"))
            weight, t = f.get_tensor("linear.weight"), f.get_tensor("t")
    except Exception as err:  # safetensors raises several types
        raise ValueError(f"{path}: not a LABCLIP map ({err})") from err
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"{path}: linear.weight must be square, got {tuple(weight.shape)}")
    if expected_dim is not None and weight.shape[0] != expected_dim:
        raise ValueError(f"{path}: A is {weight.shape[0]}×{weight.shape[0]} but the embeddings have D={expected_dim} "
                         f"(fitted for encoder {meta.get('encoder', '?')})")
    model = Labclip(weight.shape[0])
    with torch.no_grad():
        model.linear.weight.copy_(weight)
        model.t.copy_(t.reshape(()))
    return model.eval(), meta
