"""CLIP-FT, the paper's upper bound: both encoders unfrozen and trained together with the text-side A, on the
same hard-negative loss as LABCLIP. It costs a full backward pass through both encoders per step, where
LABCLIP trains D² numbers on cached embeddings.

Two recipes: :meth:`FinetuneConfig.paper` is the paper's code (``CLIPFTAlignment``: SGD, lr 0.01, 50 epochs,
batch 128 for CLEVR and 512 for PUG, t = 0, in the model's precision: fp16 on a GPU); :meth:`FinetuneConfig.offline`
is what a laptop CPU can afford for the miniature (AdamW, lr 1e-4, 150 steps of 64, the temperature starting at the
model's own and kept at most 100).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from labclip_utils.labclip import FitResult, LabclipMap, check_finite, labclip_loss, train_step
from labclip_utils.metrics import swap_accuracy
from labclip_utils.models.encoder import Encoder, pixel_dtype
from labclip_utils.progress import tqdm
from labclip_utils.scenes.dataset import SceneDataset

#: CLIP-FT's epochs at ``LABCLIP_SIZE=class``: one pass over the ~28,800 training scenes takes about 7 minutes of
#: ViT-L/14 on a T4 (the paper's 50 take hours), and the chapter says it was shortened.
CLASS_FT_EPOCHS = 1

@dataclass(frozen=True)
class FinetuneConfig:
    """How CLIP-FT is trained: ``epochs`` full passes (the paper) or ``steps`` random batches (offline)."""

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.01
    epochs: int | None = 50
    steps: int | None = None
    batch_size: int = 128
    #: None: start at the model's own logit scale and keep it at most 100; a number: start there (paper: 1, t = 0)
    init_logit_scale: float | None = 1.0
    seed: int = 0
    eval_every: int = 50
    #: Leave out rows whose negative is their caption (the authors' same-colour CLEVR rows), which the paper's
    #: code trains on.
    drop_unchanged: bool = False

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of epochs and steps")
        if (self.epochs or self.steps or 0) <= 0 or self.batch_size <= 0 or not self.lr > 0:
            raise ValueError("epochs/steps, batch_size and lr must be positive")

    @classmethod
    def paper(cls, batch_size: int = 128) -> FinetuneConfig:
        """The paper's code: SGD, lr 0.01, 50 epochs, batch 128 (CLEVR) or 512 (PUG), t = 0."""
        return cls(optimizer="sgd", lr=0.01, epochs=50, batch_size=batch_size, init_logit_scale=1.0)

    @classmethod
    def offline(cls) -> FinetuneConfig:
        """A CPU budget for the miniature: AdamW, lr 1e-4, 150 steps of 64, the model's own temperature."""
        return cls(optimizer="adamw", lr=1e-4, epochs=None, steps=150, batch_size=64, init_logit_scale=None)


class FinetunedCLIP(nn.Module):
    """A CLIP-like model with a LABCLIP map on its text side: ``encode_text = A · model.encode_text``."""

    def __init__(self, model: nn.Module, dim: int, init_logit_scale: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model
        # A computes in the text tower's output dtype (the paper's CLIPFTAlignment: fp16 with an fp16 model)
        self.labclip = LabclipMap(dim, init_logit_scale).to(dtype)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels.to(pixel_dtype(self.model)))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.labclip.linear(self.model.encode_text(tokens).to(self.labclip.A.dtype))


def _batches(n: int, config: FinetuneConfig, rng: np.random.Generator):
    if config.steps is not None:
        for _ in range(config.steps):
            yield rng.choice(n, size=min(config.batch_size, n), replace=False)
        return
    for _ in range(config.epochs or 0):  # full passes, the last partial batch kept (a DataLoader's default)
        order = rng.permutation(n)
        yield from (order[s : s + config.batch_size] for s in range(0, n, config.batch_size))


def finetune_clip(encoder: Encoder, train: SceneDataset, val: SceneDataset | None = None,
                  config: FinetuneConfig | None = None, progress: bool = True) -> FitResult:
    """Fine-tune a copy of ``encoder``'s whole model plus A on (image, caption, swapped caption) triplets.

    Returns a :class:`~labclip_utils.labclip.FitResult` like the other fits: its ``encoder`` is the fine-tuned
    :class:`Encoder` (the original is untouched), ``map`` the A on its text side, ``history`` the loss per step and
    the validation swap accuracy every ``config.eval_every`` steps, ``kept_epoch`` the last step.
    """
    config = config or FinetuneConfig.paper()
    rows_with_negative = [i for i, n in enumerate(train.negatives)
                          if n is not None and not (config.drop_unchanged and n == train.captions[i])]
    if not rows_with_negative:
        raise ValueError(f"{train.name}: no scene has a hard negative to fine-tune on")
    if config.init_logit_scale is None:
        own = getattr(encoder.model, "logit_scale", None)
        scale, clamp = (max(1.0, float(own.exp())) if own is not None else 1.0), math.log(100)
    else:
        scale, clamp = config.init_logit_scale, None
    model = FinetunedCLIP(copy.deepcopy(encoder.model), encoder.embed_dim, scale,
                          encoder.text_dtype).to(encoder.device)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train()
    params = model.parameters()
    opt = (torch.optim.SGD(params, lr=config.lr) if config.optimizer == "sgd"
           else torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0))
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    images = train.images()
    total = config.steps or (config.epochs or 0) * math.ceil(len(rows_with_negative) / config.batch_size)
    history, start = [], time.perf_counter()

    def as_encoder() -> Encoder:
        tuned = Encoder(model, encoder.preprocess, encoder.tokenize, name=f"{encoder.name}+FT",
                        pretrained=encoder.pretrained, device=encoder.device, precision=encoder.precision)
        tuned.cache_dir = encoder.cache_dir
        return tuned

    for step, batch in enumerate(tqdm(_batches(len(rows_with_negative), config, rng), total=total, desc="CLIP-FT",
                                      disable=not progress, leave=False), start=1):
        idx = [rows_with_negative[i] for i in batch]
        pixels = encoder.to_pixels([images[i] for i in idx]).to(encoder.device)
        tokens = encoder.tokenize([train.captions[i] for i in idx] + [train.negatives[i] for i in idx])
        # the loss in fp32 whatever the model computes in (fp16 logits round the softmax); gradients flow back
        img = F.normalize(model.encode_image(pixels).float(), dim=-1)
        txt = F.normalize(model.encode_text(tokens.to(encoder.device)).float(), dim=-1)
        loss = labclip_loss("hnb", img, txt[: len(idx)], txt[len(idx) :], model.labclip.logit_scale)
        value = train_step(opt, loss)
        if clamp is not None:
            with torch.no_grad():
                model.labclip.t.clamp_(max=clamp)
        row = {"step": step, "loss": value, "seconds": time.perf_counter() - start}
        if val is not None and (step % config.eval_every == 0 or step == total):
            model.eval()
            row["val_swap"] = _swap(as_encoder(), val)
            model.train()
            for p in model.parameters():
                p.requires_grad_(True)
        history.append(row)
    model.eval()
    check_finite(model, "the fine-tuned model")
    frame = pd.DataFrame(history).set_index("step")
    return FitResult(model.labclip, frame, int(frame.index[-1]), config, time.perf_counter() - start, as_encoder())


def _swap(encoder: Encoder, ds: SceneDataset) -> float:
    keep = [i for i, n in enumerate(ds.negatives) if n is not None and n != ds.captions[i]]
    images = encoder.encode_images(list(ds.images(keep)), progress=False)
    pos = encoder.encode_texts([ds.captions[i] for i in keep], progress=False)
    neg = encoder.encode_texts([ds.negatives[i] for i in keep], progress=False)
    return swap_accuracy(images, pos, neg)
