"""A tiny CLIP trained end to end (both towers and the heads, one contrastive loss), to ask *why* CLIP becomes a bag
of words (beyond the paper).

The same architecture as the miniature, trained the way CLIP is: images paired with captions, the CLIP loss, random
batches. Two caption regimes: ``"full"`` (every object of the scene is described, as in our scenes) and
``"one_object"`` (each caption describes one object of the scene, picked at random: an *incomplete* caption, like
most web alt-text). Gurung, Hoffmann and Brox (arXiv 2507.07985) trace CLIP's bag-of-words
behaviour to exactly this: captions that rarely describe more than one bound object give the contrastive loss no
reason to bind.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from labclip_utils.cache import cached_tensors
from labclip_utils.io.hashing import code_digest
from labclip_utils.models.miniature import MiniatureConfig, build_miniature, miniature_encoder, pixels_to_tensor
from labclip_utils.models.miniature_training import _cosine_lr, training_scenes
from labclip_utils.progress import tqdm
from labclip_utils.scenes.captions import caption_text


@dataclass(frozen=True)
class EndToEndConfig:
    """What determines the end-to-end model (and its cache entry)."""

    captions: Literal["full", "one_object"] = "full"
    seed: int = 0
    steps: int = 600
    lr: float = 1e-3
    batch_size: int = 128
    n_train: int = 30_000

    def miniature(self) -> MiniatureConfig:
        """The architecture: the miniature's, with its defaults."""
        return MiniatureConfig(seed=self.seed, n_train=self.n_train, batch_size=self.batch_size)


def train_end_to_end(cfg: EndToEndConfig, progress: bool = True):
    """Train both towers and the heads together with the CLIP loss on random batches; returns (model, history)."""
    arch = cfg.miniature()
    model, tokenizer = build_miniature(arch)
    ds = training_scenes(arch)
    images = ds.images(progress=progress)
    rng = np.random.default_rng(cfg.seed + 5)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6)
    lr = _cosine_lr(cfg.lr, cfg.steps, min(50, cfg.steps // 4 + 1))
    loss_fn = open_clip.ClipLoss()
    history: dict[str, list[float]] = {"loss": []}
    start = time.perf_counter()
    model.train()
    for step in tqdm(range(cfg.steps), desc=f"end-to-end tiny CLIP ({cfg.captions} captions)", disable=not progress,
                     leave=False):
        for g in opt.param_groups:
            g["lr"] = lr(step)
        idx = rng.choice(len(ds), size=cfg.batch_size, replace=False)
        if cfg.captions == "full":
            texts = [ds.captions[i] for i in idx]
        else:
            texts = [caption_text((ds.pairs[i][int(rng.integers(len(ds.pairs[i])))],)) for i in idx]
        img = F.normalize(model.image_proj(model.image_tower(pixels_to_tensor(images[idx]))), dim=-1)
        txt = F.normalize(model.text_proj(model.text_tower_output(tokenizer(texts))), dim=-1)
        loss = loss_fn(img, txt, model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        history["loss"].append(loss.item())
    model.eval()
    history["seconds"] = [time.perf_counter() - start]
    return model, tokenizer, history


def load_end_to_end(config: EndToEndConfig | None = None, *, cache_dir: str | Path, device: str = "cpu",
                    progress: bool = True):
    """The end-to-end tiny CLIP as an Encoder, trained on first use and cached in ``cache_dir`` (a chapter passes its
    profile's ``cache_dir``), keyed by config and code."""
    config = config or EndToEndConfig()
    root = Path(cache_dir)
    key = {**asdict(config), "code": code_digest("labclip_utils.models.end_to_end")}

    def compute() -> dict[str, torch.Tensor]:
        model, _, history = train_end_to_end(config, progress)
        return {**{f"model.{k}": v for k, v in model.state_dict().items()},
                **{f"history.{k}": torch.tensor(v, dtype=torch.float64) for k, v in history.items()}}

    tensors, hit = cached_tensors(root, "end_to_end", key, compute)
    arch = config.miniature()
    model, tokenizer = build_miniature(arch)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    encoder = miniature_encoder(model, tokenizer, arch, f"end-to-end-{config.captions}-seed{config.seed}", device)
    encoder.history = {k[8:]: v.tolist() for k, v in tensors.items() if k.startswith("history.")}
    encoder.trained_now = not hit
    return encoder
