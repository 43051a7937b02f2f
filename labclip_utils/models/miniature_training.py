"""Training the miniature CLIP in three stages (see :mod:`labclip_utils.models.miniature`), seeded end to end.

Only training combinations are used anywhere: the compositional split's held-out combinations (seed 42) stay
unseen by both towers and by the heads, so chapters can test on them.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import open_clip
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from labclip_utils.binding import swap_accuracy
from labclip_utils.models.miniature import (
    MiniatureCLIP,
    MiniatureConfig,
    MiniTokenizer,
    build_miniature,
    pixels_to_tensor,
    text_tower_forward,
)
from labclip_utils.scenes import CaptionStyle, caption_text, make_scenes
from labclip_utils.scenes.dataset import SceneDataset
from labclip_utils.scenes.splits import bag_key, bag_split

History = dict[str, list[float]]


def _cosine_lr(base: float, steps: int, warmup: int) -> Callable[[int], float]:
    def lr(step: int) -> float:
        if step < warmup:
            return base * (step + 1) / warmup
        return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return lr


def training_scenes(cfg: MiniatureConfig) -> SceneDataset:
    """The scenes every stage learns from: 2-object CLEVR-like scenes, training combinations only."""
    test, val = cfg.held_out
    ds = make_scenes(cfg.n_train, "clevr", 2, seed=10_000 + cfg.seed, image_size=cfg.image_size,
                     style=CaptionStyle(order="random"), test=test, val=val, colors=cfg.colors, shapes=cfg.shapes)
    return ds.select("train")


def bag_of_concepts(ds: SceneDataset, cfg: MiniatureConfig) -> torch.Tensor:
    """Multi-hot targets: which colours and which shapes are present (no binding information)."""
    colors, shapes = {c: i for i, c in enumerate(cfg.colors)}, {s: i for i, s in enumerate(cfg.shapes)}
    y = torch.zeros(len(ds), len(colors) + len(shapes))
    for i, pairs in enumerate(ds.pairs):
        for c, s in pairs:
            y[i, colors[c]] = 1
            y[i, len(colors) + shapes[s]] = 1
    return y


def pretrain_image_tower(model: MiniatureCLIP, images: np.ndarray, targets: torch.Tensor, cfg: MiniatureConfig,
                         progress: bool = True) -> History:
    """Stage 1: the image tower learns to list the colours and shapes present (multi-label BCE), no text."""
    tower = model.image_tower
    head = nn.Linear(cfg.tower_dim, targets.shape[1])
    params = list(tower.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.image_lr, weight_decay=0.01)
    lr = _cosine_lr(cfg.image_lr, cfg.image_steps, min(50, cfg.image_steps // 4 + 1))
    rng = np.random.default_rng(cfg.seed + 1)
    hist: History = {"loss": [], "exact_match": []}
    tower.train()
    for step in tqdm(range(cfg.image_steps), desc="miniature 1/3: image tower (bag of concepts)",
                     disable=not progress, leave=False):
        for g in opt.param_groups:
            g["lr"] = lr(step)
        idx = rng.integers(0, len(images), cfg.batch_size)
        x = pixels_to_tensor(images[idx]).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=x.device.type == "cpu"):
            logits = head(tower(x))
        loss = F.binary_cross_entropy_with_logits(logits.float(), targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist["loss"].append(loss.item())
        hist["exact_match"].append(((logits.float() > 0) == targets[idx].bool()).all(1).float().mean().item())
    tower.eval()
    return hist


def _text_combos(cfg: MiniatureConfig, rng: np.random.Generator, n: int) -> list[tuple[tuple[str, str], ...]]:
    """Random 2..N-object descriptions whose every object pair is a training combination."""
    test, val = cfg.held_out
    out = []
    while len(out) < n:
        k = 2 if rng.random() < 0.5 else int(rng.integers(2, cfg.text_max_objects + 1))
        k = min(k, len(cfg.colors), len(cfg.shapes))
        colors = rng.choice(cfg.colors, k, replace=False)
        shapes = rng.choice(cfg.shapes, k, replace=False)
        pairs = tuple(zip(colors.tolist(), shapes.tolist(), strict=True))
        if all(bag_split(bag_key((pairs[i], pairs[j])), test, val) == "train"
               for i in range(k) for j in range(i + 1, k)):
            out.append(pairs)
    return out


def _rebind(pairs: tuple, rng: np.random.Generator) -> tuple:
    """Swap the colours of two objects (the same words, bound differently)."""
    i, j = rng.choice(len(pairs), 2, replace=False)
    out = list(pairs)
    out[i], out[j] = (pairs[j][0], pairs[i][1]), (pairs[i][0], pairs[j][1])
    return tuple(out)


def _view(pairs: tuple, rng: np.random.Generator) -> str:
    """The same description with its object phrases in a random order, with or without articles."""
    order = rng.permutation(len(pairs))
    return caption_text(tuple(pairs[i] for i in order), article=bool(rng.random() < 0.75))


def pretrain_text_tower(model: MiniatureCLIP, tokenizer: MiniTokenizer, cfg: MiniatureConfig,
                        progress: bool = True) -> History:
    """Stage 2: text only. Two orderings of the same description are positives; every other caption in the
    batch, including its re-bound twin (same words, colours swapped), is a negative."""
    tower = model.text_tower
    proj = nn.Sequential(nn.Linear(cfg.tower_dim, 256), nn.GELU(), nn.Linear(256, 64))
    params = list(tower.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.text_lr, weight_decay=0.01)
    lr = _cosine_lr(cfg.text_lr, cfg.text_steps, min(30, cfg.text_steps // 4 + 1))
    rng = np.random.default_rng(cfg.seed + 2)
    hist: History = {"loss": [], "accuracy": []}
    tower.train()
    half = cfg.batch_size // 2
    for step in tqdm(range(cfg.text_steps), desc="miniature 2/3: text tower (phrase order)",
                     disable=not progress, leave=False):
        for g in opt.param_groups:
            g["lr"] = lr(step)
        base = _text_combos(cfg, rng, half)
        batch = base + [_rebind(p, rng) for p in base]
        v1 = [_view(p, rng) for p in batch]
        v2 = [_view(p, rng) for p in batch]
        h = F.normalize(proj(text_tower_forward(tower, tokenizer(v1 + v2))), dim=-1)
        sim = h @ h.T / cfg.text_tau
        sim.fill_diagonal_(-1e9)
        b = len(batch)
        target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
        loss = F.cross_entropy(sim, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist["loss"].append(loss.item())
        hist["accuracy"].append((sim.argmax(1) == target).float().mean().item())
    tower.eval()
    return hist


@torch.no_grad()
def _image_tower_outputs(model: MiniatureCLIP, images: np.ndarray) -> torch.Tensor:
    return torch.cat([model.image_tower(pixels_to_tensor(images[i : i + 1000])) for i in range(0, len(images), 1000)])


@torch.no_grad()
def _text_tower_outputs(model: MiniatureCLIP, tokenizer: MiniTokenizer, captions: list[str]) -> torch.Tensor:
    """Raw text-tower outputs; each distinct caption is encoded once."""
    unique = sorted(set(captions))
    u = text_tower_forward(model.text_tower, tokenizer(unique))
    lookup = {c: k for k, c in enumerate(unique)}
    return u[[lookup[c] for c in captions]]


def _tower_outputs(model: MiniatureCLIP, tokenizer: MiniTokenizer, images: np.ndarray, captions: list[str]):
    return _image_tower_outputs(model, images), _text_tower_outputs(model, tokenizer, captions)


def _batches_without_swap_partners(keys: list, binds: list, batch: int, steps: int, rng: np.random.Generator,
                                   allow: bool = False):
    """Index batches in which no two scenes are attribute swaps of each other (same bag, other binding).

    ``allow=True`` gives plain random batches, where swap partners meet as in-batch hard negatives.
    """
    n, perm, ptr = len(keys), rng.permutation(len(keys)), 0
    for _ in range(steps):
        chosen: list[int] = []
        seen: dict = {}
        while len(chosen) < batch:
            if ptr >= n:
                perm, ptr = rng.permutation(n), 0
            i = int(perm[ptr])
            ptr += 1
            if not allow and keys[i] in seen and binds[i] not in seen[keys[i]]:
                continue
            seen.setdefault(keys[i], set()).add(binds[i])
            chosen.append(i)
        yield np.asarray(chosen)


def fit_heads(model: MiniatureCLIP, z: torch.Tensor, u: torch.Tensor, ds: SceneDataset, cfg: MiniatureConfig,
              progress: bool = True, allow_swap_partners: bool = False) -> History:
    """Stage 3: towers frozen and standardised; linear heads + temperature trained with the CLIP loss.

    Swap partners are kept out of each batch unless ``allow_swap_partners``: like web data, the batches then
    almost never contain a hard negative, so nothing rewards aligning the binding.
    """
    model.image_mean.copy_(z.mean(0))
    model.image_std.copy_(z.std(0) + 1e-6)
    model.text_mean.copy_(u.mean(0))
    model.text_std.copy_(u.std(0) + 1e-6)
    zi, ut = (z - model.image_mean) / model.image_std, (u - model.text_mean) / model.text_std
    params = [model.image_proj.weight, model.text_proj.weight, model.logit_scale]
    opt = torch.optim.AdamW(params, lr=cfg.head_lr, weight_decay=cfg.head_weight_decay, betas=(0.9, 0.98), eps=1e-6)
    lr = _cosine_lr(cfg.head_lr, cfg.head_steps, min(50, cfg.head_steps // 4 + 1))
    loss_fn = open_clip.ClipLoss()
    keys = [bag_key(p) for p in ds.pairs]
    binds = [tuple(sorted(p)) for p in ds.pairs]
    rng = np.random.default_rng(cfg.seed + 3)
    hist: History = {"loss": [], "logit_scale": []}
    batches = _batches_without_swap_partners(keys, binds, cfg.batch_size, cfg.head_steps, rng, allow_swap_partners)
    for step, idx in enumerate(tqdm(batches, total=cfg.head_steps, desc="miniature 3/3: alignment heads (CLIP loss)",
                                    disable=not progress, leave=False)):
        for g in opt.param_groups:
            g["lr"] = lr(step)
        img = F.normalize(model.image_proj(zi[idx]), dim=-1)
        txt = F.normalize(model.text_proj(ut[idx]), dim=-1)
        loss = loss_fn(img, txt, model.logit_scale.exp())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        hist["loss"].append(loss.item())
        hist["logit_scale"].append(model.logit_scale.exp().item())
    return hist


def train_miniature(cfg: MiniatureConfig, progress: bool = True) -> tuple[MiniatureCLIP, dict[str, History]]:
    """All three stages from scratch; returns the model and the training curves (with stage timings)."""
    start = time.perf_counter()
    model, tokenizer = build_miniature(cfg)
    torch.manual_seed(cfg.seed + 100)
    ds = training_scenes(cfg)
    images = ds.images(progress=progress)
    timings = {"data_s": [time.perf_counter() - start]}
    t = time.perf_counter()
    image_hist = pretrain_image_tower(model, images, bag_of_concepts(ds, cfg), cfg, progress)
    timings["image_tower_s"] = [time.perf_counter() - t]
    t = time.perf_counter()
    text_hist = pretrain_text_tower(model, tokenizer, cfg, progress)
    timings["text_tower_s"] = [time.perf_counter() - t]
    t = time.perf_counter()
    for p in list(model.image_tower.parameters()) + list(model.text_tower.parameters()):
        p.requires_grad_(False)
    z, u = _tower_outputs(model, tokenizer, images, ds.captions)
    head_hist = fit_heads(model, z, u, ds, cfg, progress)
    timings["heads_s"] = [time.perf_counter() - t]
    timings["total_s"] = [time.perf_counter() - start]
    model.eval()
    return model, {"image_tower": image_hist, "text_tower": text_hist, "heads": head_hist, "timings": timings}


def alignment_sweep(encoder, eval_scenes: dict[str, SceneDataset], steps: tuple[int, ...] = (100, 300, 1000),
                    progress: bool = True) -> pd.DataFrame:
    """Re-train only the miniature's heads for different numbers of steps, with swap partners kept out of the
    batches (as in the miniature) or allowed in (in-batch hard negatives), and measure the swap test each time.

    The encoder itself is not changed (a copy is trained). Returns one row per (steps, batches, eval set).
    """
    cfg = encoder.config
    model = copy.deepcopy(encoder.model)
    for p in (model.image_proj.weight, model.text_proj.weight, model.logit_scale):
        p.requires_grad_(True)
    ds = training_scenes(cfg)
    z, u = _tower_outputs(model, encoder.tokenize, ds.images(progress=progress), ds.captions)
    feats = {}
    for name, ev in eval_scenes.items():
        keep = [i for i, n in enumerate(ev.negatives) if n is not None]
        zi = _image_tower_outputs(model, ev.images(keep, progress=progress))
        pos = _text_tower_outputs(model, encoder.tokenize, [ev.captions[i] for i in keep])
        neg = _text_tower_outputs(model, encoder.tokenize, [ev.negatives[i] for i in keep])
        feats[name] = (zi, pos, neg)
    rows = []
    for allow in (False, True):
        for n in steps:
            torch.manual_seed(cfg.seed + 7)
            nn.init.kaiming_uniform_(model.image_proj.weight, a=math.sqrt(5))
            nn.init.kaiming_uniform_(model.text_proj.weight, a=math.sqrt(5))
            with torch.no_grad():
                model.logit_scale.fill_(math.log(1 / 0.07))
            fit_heads(model, z, u, ds, replace(cfg, head_steps=n), progress=False, allow_swap_partners=allow)
            with torch.no_grad():
                for name, (zi, pos, neg) in feats.items():
                    img = F.normalize(model.image_proj((zi - model.image_mean) / model.image_std), dim=-1)
                    tp = F.normalize(model.text_proj((pos - model.text_mean) / model.text_std), dim=-1)
                    tn = F.normalize(model.text_proj((neg - model.text_mean) / model.text_std), dim=-1)
                    rows.append({"head steps": n, "batches": "swap partners allowed" if allow else "no swap partners",
                                 "scenes": name, "swap accuracy": swap_accuracy(img, tp, tn)})
    return pd.DataFrame(rows)
