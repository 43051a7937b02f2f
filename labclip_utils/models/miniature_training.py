"""Training the miniature CLIP in three stages (see :mod:`labclip_utils.models.miniature`), seeded end to end.

Only training combinations are used anywhere: the compositional split's held-out combinations (seed 42) stay
unseen by both towers and by the heads, so chapters can test on them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F

from labclip_utils.cache import cached_tensors
from labclip_utils.io.hashing import code_digest
from labclip_utils.models.miniature import (
    MiniatureCLIP,
    MiniatureConfig,
    MiniTokenizer,
    build_miniature,
    miniature_encoder,
    pixels_to_tensor,
)
from labclip_utils.profile import default_cache_dir
from labclip_utils.progress import tqdm
from labclip_utils.scenes import CaptionStyle, caption_text, make_scenes
from labclip_utils.scenes.dataset import SceneDataset
from labclip_utils.scenes.negatives import swap_attributes
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
        # fp32: bf16 autocast is ~13× slower than fp32 on CPUs without native bf16 (AVX2 laptops and this book's
        # CI machine: 7.1 vs 0.54 s per step on one core), and fp32 trains the same miniature on every CPU
        x = pixels_to_tensor(images[idx]).contiguous(memory_format=torch.channels_last)
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


def _view(pairs: tuple, rng: np.random.Generator) -> str:
    """The same description with its object phrases in a random order, with or without articles."""
    order = rng.permutation(len(pairs))
    return caption_text(tuple(pairs[i] for i in order), article=bool(rng.random() < 0.75))


def pretrain_text_tower(model: MiniatureCLIP, tokenizer: MiniTokenizer, cfg: MiniatureConfig,
                        progress: bool = True) -> History:
    """Stage 2: text only. Two orderings of the same description are positives; every other caption in the
    batch, including its re-bound twin (same words, colours swapped), is a negative. With
    ``cfg.text_parse_weight > 0`` the tower also learns to parse each caption: a linear read-out of its output names
    every (shape, colour) pair the caption describes (a text-only target, like reading a sentence's structure)."""
    tower = model.text_tower
    proj = nn.Sequential(nn.Linear(cfg.tower_dim, 256), nn.GELU(), nn.Linear(256, 64))
    parse = nn.Linear(cfg.tower_dim, len(cfg.shapes) * len(cfg.colors))
    params = list(tower.parameters()) + list(proj.parameters()) + list(parse.parameters())
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
        batch = base + [swap_attributes(p, rng) for p in base]
        v1 = [_view(p, rng) for p in batch]
        v2 = [_view(p, rng) for p in batch]
        out = model.text_tower_output(tokenizer(v1 + v2))
        h = F.normalize(proj(out), dim=-1)
        sim = h @ h.T / cfg.text_tau
        sim.fill_diagonal_(-1e9)
        b = len(batch)
        target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
        loss = F.cross_entropy(sim, target)
        if cfg.text_parse_weight:
            pairs = torch.zeros(b, len(cfg.shapes) * len(cfg.colors))
            for i, description in enumerate(batch):
                for colour, shape in description:
                    pairs[i, cfg.shapes.index(shape) * len(cfg.colors) + cfg.colors.index(colour)] = 1
            loss = loss + cfg.text_parse_weight * F.binary_cross_entropy_with_logits(parse(out), pairs.repeat(2, 1))
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
    u = torch.cat([model.text_tower_output(tokenizer(unique[i : i + 1024])) for i in range(0, len(unique), 1024)])
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
    """Stage 3: towers frozen and scaled per dimension (and centred if ``cfg.centre``); linear heads trained with
    the CLIP loss, with a learned temperature or the fixed ``cfg.logit_scale``.

    Swap partners are kept out of each batch unless ``allow_swap_partners``: like web data, the batches then
    almost never contain a hard negative, so nothing rewards aligning the binding.
    """
    with torch.no_grad():
        model.image_mean.copy_(z.mean(0) if cfg.centre else torch.zeros(z.shape[1]))
        model.image_std.copy_(z.std(0) + 1e-6)
        model.text_mean.copy_(u.mean(0) if cfg.centre else torch.zeros(u.shape[1]))
        model.text_std.copy_(u.std(0) + 1e-6)
    zi, ut = (z - model.image_mean) / model.image_std, (u - model.text_mean) / model.text_std
    learn_scale = cfg.logit_scale is None
    params = [model.image_proj.weight, model.text_proj.weight] + ([model.logit_scale] if learn_scale else [])
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
        if learn_scale:
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
    image_hist = pretrain_image_tower(model, images, torch.from_numpy(ds.bag_of_concepts()), cfg, progress)
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




def load_miniature(pretrained: str | None = None, device: str = "cpu", *, config: MiniatureConfig | None = None,
                   cache_dir: str | Path | None = None, progress: bool = True):
    """The miniature as an :class:`~labclip_utils.models.Encoder` (``load_encoder("miniature", "seed0")``).

    ``pretrained="seed<N>"`` gives the trained weights of seed N; ``pretrained=None`` the untrained architecture
    with its initial random weights (the random-init control), as for every encoder. Trained weights are computed
    on first use (a few minutes on 2 cores) and cached, keyed by the configuration *and* a digest of the training
    code, so every later call, from any notebook, loads the checkpoint (safetensors, no pickle). The encoder
    carries ``.config``, ``.history`` (training curves) and ``.trained_now``. ``cache_dir`` is where the weights
    are cached (a chapter passes its profile's; default :func:`labclip_utils.profile.default_cache_dir`).
    """
    if pretrained is not None and (not pretrained.startswith("seed") or not pretrained[4:].isdigit()):
        raise ValueError(f"miniature weights are named 'seed<N>' (or None for random init), got {pretrained!r}")
    if config is None:
        config = MiniatureConfig(seed=int(pretrained[4:]) if pretrained else 0)
    elif pretrained is not None and int(pretrained[4:]) != config.seed:
        raise ValueError(f"pretrained={pretrained!r} disagrees with config.seed={config.seed}")
    model, tokenizer = build_miniature(config)
    if pretrained is None:
        encoder = miniature_encoder(model, tokenizer, config, None, device)
        encoder.history, encoder.trained_now = {}, False
        return encoder
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = {**config.key(), "code": code_digest("labclip_utils.models.miniature_training")}

    def compute() -> dict[str, torch.Tensor]:
        trained, history = train_miniature(config, progress=progress)
        return {**{f"model.{k}": v for k, v in trained.state_dict().items()}, **_history_to_tensors(history)}

    tensors, hit = cached_tensors(root, "miniature", key, compute)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    encoder = miniature_encoder(model, tokenizer, config, f"seed{config.seed}", device)
    encoder.history = _history_from_tensors(tensors)
    encoder.trained_now = not hit
    return encoder


def _history_to_tensors(history: dict[str, History]) -> dict[str, torch.Tensor]:
    return {f"history.{stage}.{name}": torch.tensor(values, dtype=torch.float64)
            for stage, curves in history.items() for name, values in curves.items()}


def _history_from_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, History]:
    out: dict[str, History] = {}
    for key, value in tensors.items():
        if key.startswith("history."):
            _, stage, name = key.split(".", 2)
            out.setdefault(stage, {})[name] = value.tolist()
    return out
