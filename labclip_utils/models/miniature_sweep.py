"""An experiment on the miniature: re-train only its alignment heads, with and without swap partners in the
batches, and watch the swap test (chapter "A CLIP you can train on a laptop")."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from labclip_utils.metrics import swap_accuracy
from labclip_utils.models.miniature_training import (
    _image_tower_outputs,
    _text_tower_outputs,
    _tower_outputs,
    fit_heads,
    training_scenes,
)
from labclip_utils.scenes.dataset import SceneDataset


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
                model.logit_scale.fill_(math.log(cfg.logit_scale or 1 / 0.07))
            fit_heads(model, z, u, ds, replace(cfg, head_steps=n), progress=False, allow_swap_partners=allow)
            with torch.no_grad():
                for name, (zi, pos, neg) in feats.items():
                    img = F.normalize(model.image_proj((zi - model.image_mean) / model.image_std), dim=-1)
                    tp = F.normalize(model.text_proj((pos - model.text_mean) / model.text_std), dim=-1)
                    tn = F.normalize(model.text_proj((neg - model.text_mean) / model.text_std), dim=-1)
                    rows.append({"head steps": n, "batches": "swap partners allowed" if allow else "no swap partners",
                                 "scenes": name, "swap accuracy": swap_accuracy(img, tp, tn)})
    return pd.DataFrame(rows)
