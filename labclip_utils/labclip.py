"""LABCLIP: one D×D matrix A on the text embedding (initialised to the identity) and a learnable temperature,
trained on frozen embeddings with attribute-swapped hard negatives.

The loss follows the paper's code (``constrastive_loss_with_negatives``): for a batch of B images, the texts are
``[A·positives; A·negatives]`` (2B rows, each re-normalised); image→text cross-entropy runs over all 2B texts,
text→image over the B positives only; the two are averaged. ``loss="sb"`` is the paper's SB ablation: the plain
symmetric CLIP loss over the B positives, no negatives.

Names: :class:`LabclipMap` is the fitted map (``labclip_map.A`` is the matrix, ``labclip_map.logit_scale`` the
temperature); :class:`LabclipConfig` is how it is trained; :class:`FitResult` is what training returns.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from labclip_utils.cache import cached_tensors, read_safetensors, write_safetensors
from labclip_utils.io.files import atomic_write, remove_stale_temporaries
from labclip_utils.io.hashing import code_digest
from labclip_utils.metrics import swap_accuracy
from labclip_utils.models.encoder import Encoder
from labclip_utils.progress import tqdm
from labclip_utils.store import EmbeddingStore, embed_scenes

Loss = Literal["hnb", "sb"]
Triplet = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class LabclipMap(nn.Module):
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
    def dim(self) -> int:
        return self.linear.weight.shape[0]

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.t.exp()

    def forward(self, texts: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(texts), dim=-1)

    @torch.no_grad()
    def map_texts(self, texts: torch.Tensor) -> torch.Tensor:
        """Apply A to text embeddings (any norm: A is re-normalised after); NaN rows stay NaN."""
        if texts.ndim != 2 or texts.shape[1] != self.dim:
            raise ValueError(f"A is {self.dim}×{self.dim} but the text embeddings are {tuple(texts.shape)}")
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


# -- the training step every loop shares (in memory, streamed from shards, CLIP-FT) ---------------------------------
def labclip_loss(loss: Loss, images: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None,
                 logit_scale: torch.Tensor) -> torch.Tensor:
    """The loss a fit is configured with: the paper's hard-negative loss (``"hnb"``) or the SB ablation (``"sb"``,
    which ignores ``negatives``)."""
    if loss == "hnb":
        if negatives is None:
            raise ValueError("the hnb loss needs the hard negatives")
        return hard_negative_loss(images, positives, negatives, logit_scale)
    return symmetric_loss(images, positives, logit_scale)


def train_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One optimiser step on ``loss`` (gradients cleared, back-propagated, applied); returns the loss's value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def epoch_row(epoch: int, losses: float, batches: int, labclip_map: LabclipMap, start: float, **extra: float) -> dict:
    """One row of a fit's history: the epoch, its mean loss, the logit scale after it, seconds since the start."""
    return {"epoch": epoch, "loss": losses / max(batches, 1), "logit_scale": labclip_map.logit_scale.item(),
            "seconds": time.perf_counter() - start, **extra}


def check_finite(module: nn.Module, what: str = "A or t") -> None:
    """Stop a fit that diverged: every parameter of ``module`` must be finite."""
    if not all(torch.isfinite(p).all() for p in module.parameters()):
        raise FloatingPointError(f"training diverged: {what} is not finite (try a smaller lr)")


@dataclass(frozen=True)
class LabclipConfig:
    """How A is trained. The defaults are the paper's synthetic-data recipe, as its code runs it: Adam, lr 0.01,
    50 epochs, batch 128, t = 0 at the start (logit scale 1), the last epoch kept, the last (partial) batch of an
    epoch used, and rows whose negative equals their caption kept (they teach nothing but cost nothing).

    ``keep="best_val"`` keeps the epoch with the best validation swap accuracy instead; ``drop_last=True`` skips
    the partial batch; ``drop_unchanged=True`` leaves out rows whose negative embedding equals the caption's.
    """

    loss: Loss = "hnb"
    lr: float = 1e-2
    epochs: int = 50
    batch_size: int = 128
    init_logit_scale: float = 1.0
    seed: int = 0
    keep: Literal["last", "best_val"] = "last"
    drop_last: bool = False
    drop_unchanged: bool = False

    def __post_init__(self) -> None:
        if self.loss not in ("hnb", "sb"):
            raise ValueError(f"unknown loss {self.loss!r}; choose 'hnb' or 'sb'")
        if not (isinstance(self.epochs, int) and self.epochs > 0):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (self.init_logit_scale > 0 and math.isfinite(self.init_logit_scale)):
            raise ValueError(f"init_logit_scale must be a positive number, got {self.init_logit_scale!r}")
        if self.keep not in ("last", "best_val"):
            raise ValueError(f"keep must be 'last' or 'best_val', got {self.keep!r}")

    @classmethod
    def coco(cls) -> LabclipConfig:
        """The paper's COCO recipe (``coco_alignment.py``): lr 1e-3, batch 1024, 10 epochs."""
        return cls(lr=1e-3, batch_size=1024, epochs=10)


@dataclass
class FitResult:
    """The fitted map, its history (per epoch; per step for CLIP-FT), which epoch (or step) was kept and how long
    training took. CLIP-FT (:func:`labclip_utils.finetune.finetune_clip`) also returns its fine-tuned ``encoder`` and
    its :class:`~labclip_utils.finetune.FinetuneConfig` as ``config``."""

    map: LabclipMap
    history: pd.DataFrame
    kept_epoch: int
    config: LabclipConfig | Any
    seconds: float
    encoder: Encoder | None = None


def check_triplet(triplet: Triplet, name: str = "train", dim: int | None = None) -> Triplet:
    """``(images, captions, negatives)`` as float32, validated: equal N×D shapes, D = ``dim`` when given, at least
    one row, finite values. A negative row that is entirely NaN means "this scene has no negative" and is allowed;
    any other NaN or infinity is refused, naming the tensor and the first bad row."""
    if not isinstance(triplet, (tuple, list)) or len(triplet) != 3:
        raise TypeError(f"{name}: expected (images, captions, negatives)")
    images, pos, neg = (torch.as_tensor(t).float() for t in triplet)
    shapes = [tuple(t.shape) for t in (images, pos, neg)]
    if len(set(shapes)) != 1 or images.ndim != 2:
        raise ValueError(f"{name}: images, captions and negatives must all be N×D, got {shapes}")
    if len(images) == 0:
        raise ValueError(f"{name}: no rows")
    if dim is not None and images.shape[1] != dim:
        raise ValueError(f"{name}: embeddings have D={images.shape[1]} but A is {dim}×{dim}")
    for label, t in (("images", images), ("captions", pos)):
        bad = (~torch.isfinite(t)).any(dim=1).nonzero()
        if len(bad):
            raise ValueError(f"{name}: {label} row {int(bad[0])} has NaN or infinite values "
                             f"({len(bad)} such rows)")
    missing = torch.isnan(neg).all(dim=1)
    bad = ((~torch.isfinite(neg)).any(dim=1) & ~missing).nonzero()
    if len(bad):
        raise ValueError(f"{name}: negatives row {int(bad[0])} has NaN or infinite values ({len(bad)} such rows)")
    return images, pos, neg


def _usable(triplet: Triplet, config: LabclipConfig, name: str) -> Triplet:
    images, pos, neg = triplet
    keep = ~torch.isnan(neg).all(dim=1)
    if config.drop_unchanged:
        keep &= ~(neg == pos).all(dim=1)
    if not keep.any():
        raise ValueError(f"{name}: no row has a hard negative (all {len(neg)} negatives are missing"
                         + (" or equal to their caption)" if config.drop_unchanged else ")"))
    return images[keep], pos[keep], neg[keep]


def fit_labclip(train: Triplet, val: Triplet | None = None, config: LabclipConfig = LabclipConfig(),
                progress: bool = True) -> FitResult:
    """Fit A (and t) on in-memory unit-norm embeddings ``(images, captions, negatives)``, one pass of shuffled
    batches per epoch, reporting the validation swap accuracy after each epoch when ``val`` is given.

    Rows without a negative (NaN) are left out; bad values are refused (see :func:`check_triplet`).
    """
    images, pos, neg = _usable(check_triplet(train, "train"), config, "train")
    dim = images.shape[1]
    if val is not None:  # the swap test leaves out rows whose negative is their caption, whatever training does
        val = _usable(check_triplet(val, "val", dim), replace(config, drop_unchanged=True), "val")
    if config.keep == "best_val" and val is None:
        raise ValueError("keep='best_val' needs a validation set")
    gen = torch.Generator().manual_seed(config.seed)
    labclip_map = LabclipMap(dim, config.init_logit_scale)
    opt = torch.optim.Adam(labclip_map.parameters(), lr=config.lr)
    rows, best, best_state = [], -1.0, None
    start, step = time.perf_counter(), 0
    for epoch in tqdm(range(1, config.epochs + 1), desc=f"LABCLIP ({config.loss})", disable=not progress,
                      leave=False):
        total, batches = 0.0, 0
        for idx in torch.randperm(len(images), generator=gen).split(config.batch_size):
            if config.drop_last and len(idx) < config.batch_size and batches:
                continue
            negatives = labclip_map(neg[idx]) if config.loss == "hnb" else None
            loss = labclip_loss(config.loss, images[idx], labclip_map(pos[idx]), negatives, labclip_map.logit_scale)
            total, batches, step = total + train_step(opt, loss), batches + 1, step + 1
        row = epoch_row(epoch, total, batches, labclip_map, start, steps=step)
        if val is not None:
            with torch.no_grad():
                row["val_swap"] = swap_accuracy(val[0], labclip_map(val[1]), labclip_map(val[2]))
            if row["val_swap"] > best:
                best, best_state = row["val_swap"], {k: v.clone() for k, v in labclip_map.state_dict().items()}
        rows.append(row)
    history = pd.DataFrame(rows).set_index("epoch")
    kept = int(history.index[-1])
    if config.keep == "best_val":
        labclip_map.load_state_dict(best_state)
        kept = int(history["val_swap"].idxmax())
    check_finite(labclip_map)
    return FitResult(labclip_map.eval(), history, kept, config, time.perf_counter() - start)


def fit_on_scenes(encoder, scenes, config: LabclipConfig | None = None, *, store=None,
                  progress: bool = True) -> FitResult:
    """LABCLIP's A fitted on the evaluation scenes' training combinations (:func:`fit_on_dataset` of
    ``scenes.pool``)."""
    return fit_on_dataset(encoder, scenes.pool, config, store=store, progress=progress)


def fit_on_dataset(encoder, dataset, config: LabclipConfig | None = None, *, store=None,
                   progress: bool = True) -> FitResult:
    """LABCLIP's A fitted on a scene dataset's training split (validation curve on its validation split).

    Cached, keyed by the encoder, the dataset's content and split, the settings and this module's code, so every
    chapter that needs this A shares one fit.
    """
    store = store or EmbeddingStore.of(encoder)
    config = config or LabclipConfig()
    pool = embed_scenes(encoder, dataset, store=store, progress=progress)
    key = {"encoder": encoder.id, "encoder_code": encoder.code_id, "pool": dataset.fingerprint(),
           "labclip": asdict(config), "code": code_digest("labclip_utils.labclip")}

    def compute() -> dict[str, torch.Tensor]:
        val = pool.select("val")
        fit = fit_labclip(pool.select("train").triplet(), val.triplet() if len(val) else None, config,
                          progress=progress)
        history = {f"history.{c}": torch.tensor(fit.history[c].astype(float).to_numpy()) for c in fit.history}
        return history | {"history.epoch": torch.tensor(fit.history.index.to_numpy()), "A": fit.map.A.detach(),
                          "t": fit.map.t.detach(), "kept_epoch": torch.tensor(fit.kept_epoch),
                          "seconds": torch.tensor(fit.seconds)}

    tensors, _ = cached_tensors(store.root, "labclip_fits", key, compute)
    labclip_map = map_from_tensors(tensors["A"], tensors["t"])
    history = pd.DataFrame({k.removeprefix("history."): v.numpy() for k, v in tensors.items()
                            if k.startswith("history.") and k != "history.epoch"},
                           index=pd.Index(tensors["history.epoch"].numpy(), name="epoch"))
    return FitResult(labclip_map, history, int(tensors["kept_epoch"]), config, float(tensors["seconds"]))


def map_from_tensors(A: torch.Tensor, t: torch.Tensor) -> LabclipMap:
    """A :class:`LabclipMap` holding the given matrix and temperature."""
    labclip_map = LabclipMap(A.shape[0])
    with torch.no_grad():
        labclip_map.linear.weight.copy_(A)
        labclip_map.t.copy_(t.reshape(()))
    return labclip_map.eval()


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


def save_labclip(path: str | Path, labclip_map: LabclipMap, **meta: str | int | float) -> Path:
    """Write A and t as safetensors, with metadata (``encoder`` id, D, the data it was fitted on...). The file
    appears complete or not at all, even when several processes write the same path at once."""
    path = Path(path)
    if not all(torch.isfinite(p).all() for p in labclip_map.parameters()):
        raise ValueError(f"{path}: refusing to save a map whose A or t is not finite")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    info = {"format": "labclip-1", "dim": labclip_map.dim, **meta}
    tensors = {"linear.weight": labclip_map.A.detach().contiguous(), "t": labclip_map.t.detach().reshape(1)}
    return atomic_write(path, lambda tmp: write_safetensors(tmp, tensors, {"labclip": json.dumps(info, default=str)}),
                        share=True)


def load_labclip(path: str | Path, expected_dim: int | None = None, *, encoder_id: str | None = None,
                 allow_other_encoder: bool = False) -> tuple[LabclipMap, dict]:
    """Read a map written by :func:`save_labclip`; errors name the file and what is wrong with it.

    ``expected_dim`` (the embedding size it will be used with) and ``encoder_id`` (the encoder of those
    embeddings) are checked against the file: an A fitted for one encoder is refused for another's embeddings,
    even of the same width, unless ``allow_other_encoder=True``.
    """
    path = Path(path)
    try:  # one read of the file: a writer replacing it meanwhile cannot mix its metadata with other weights
        tensors, header = read_safetensors(path)
        meta = json.loads(header.get("labclip", "{}"))
        weight, t = tensors["linear.weight"], tensors["t"]
    except Exception as err:  # missing tensors, bad JSON, unreadable file
        raise ValueError(f"{path}: not a LABCLIP map ({err})") from err
    if weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"{path}: linear.weight must be square, got {tuple(weight.shape)}")
    if t.numel() != 1:
        raise ValueError(f"{path}: t must hold one number, got shape {tuple(t.shape)}")
    if not (torch.isfinite(weight).all() and torch.isfinite(t).all()):
        raise ValueError(f"{path}: A or t contains NaN or infinite values")
    if expected_dim is not None and weight.shape[0] != expected_dim:
        raise ValueError(f"{path}: A is {weight.shape[0]}×{weight.shape[0]} but the embeddings have D={expected_dim} "
                         f"(fitted for encoder {meta.get('encoder', '?')})")
    fitted_for = meta.get("encoder")
    if encoder_id is not None and not allow_other_encoder and fitted_for not in (None, "?", encoder_id):
        raise ValueError(f"{path}: A was fitted for encoder {fitted_for!r}, not {encoder_id!r} "
                         "(pass allow_other_encoder=True, or --allow-other-encoder, to use it anyway)")
    return map_from_tensors(weight.float(), t.float()), meta
