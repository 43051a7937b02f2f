"""CLIP-FT, the paper's upper bound: both encoders unfrozen and trained together with the text-side A, on the
same hard-negative loss as LABCLIP. It costs a full backward pass through both encoders per step, where
LABCLIP trains D² numbers on cached embeddings.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from labclip_utils.binding import swap_accuracy
from labclip_utils.labclip import Labclip, hard_negative_loss
from labclip_utils.models.encoder import Encoder
from labclip_utils.scenes.dataset import SceneDataset


class FinetunedCLIP(nn.Module):
    """A CLIP-like model with a LABCLIP map on its text side: ``encode_text = A · model.encode_text``."""

    def __init__(self, model: nn.Module, dim: int, init_logit_scale: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.labclip = Labclip(dim, init_logit_scale)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.labclip.linear(self.model.encode_text(tokens))


def finetune_clip(
    encoder: Encoder, train: SceneDataset, val: SceneDataset | None = None, *, steps: int = 300,
    batch_size: int = 64, lr: float = 1e-4, seed: int = 0, eval_every: int = 50, progress: bool = True,
) -> tuple[Encoder, pd.DataFrame]:
    """Fine-tune a copy of ``encoder``'s whole model plus A on (image, caption, swapped caption) triplets.

    Returns the fine-tuned :class:`Encoder` (the original is untouched) and a history with the loss per step and
    the validation swap accuracy every ``eval_every`` steps.
    """
    rows_with_negative = [i for i, n in enumerate(train.negatives) if n is not None]
    if not rows_with_negative:
        raise ValueError(f"{train.name}: no scene has a hard negative to fine-tune on")
    logit_scale = getattr(encoder.model, "logit_scale", None)  # start A's temperature at the model's own
    scale = float(logit_scale.exp()) if logit_scale is not None else 1.0
    model = FinetunedCLIP(copy.deepcopy(encoder.model), encoder.embed_dim, max(1.0, scale)).to(encoder.device)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    images = train.images()
    history, start = [], time.perf_counter()
    for step in tqdm(range(1, steps + 1), desc="CLIP-FT", disable=not progress, leave=False):
        idx = rng.choice(rows_with_negative, size=min(batch_size, len(rows_with_negative)), replace=False)
        pixels = encoder.to_pixels([images[i] for i in idx]).to(encoder.device)
        tokens = encoder.tokenize([train.captions[i] for i in idx] + [train.negatives[i] for i in idx])
        img = F.normalize(model.encode_image(pixels), dim=-1)
        txt = F.normalize(model.encode_text(tokens.to(encoder.device)), dim=-1)
        loss = hard_negative_loss(img, txt[: len(idx)], txt[len(idx) :], model.labclip.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.labclip.t.clamp_(max=math.log(100))
        row = {"step": step, "loss": loss.item(), "seconds": time.perf_counter() - start}
        if val is not None and (step % eval_every == 0 or step == steps):
            model.eval()
            val_enc = Encoder(model, encoder.preprocess, encoder.tokenize, name=f"{encoder.name}+FT",
                              pretrained=encoder.pretrained, device=encoder.device)
            row["val_swap"] = _swap(val_enc, val)
            model.train()
            for p in model.parameters():
                p.requires_grad_(True)
        history.append(row)
    model.eval()
    result = Encoder(model, encoder.preprocess, encoder.tokenize, name=f"{encoder.name}+FT",
                     pretrained=encoder.pretrained, device=encoder.device)
    return result, pd.DataFrame(history).set_index("step")


def _swap(encoder: Encoder, ds: SceneDataset) -> float:
    keep = [i for i, n in enumerate(ds.negatives) if n is not None]
    images = encoder.encode_images(list(ds.images(keep)), progress=False)
    pos = encoder.encode_texts([ds.captions[i] for i in keep], progress=False)
    neg = encoder.encode_texts([ds.negatives[i] for i in keep], progress=False)
    return swap_accuracy(images, pos, neg)
