"""The miniature CLIP's architecture: a CLIP-like model small enough to train on a laptop CPU.

Two "locked towers" learn their own modality alone, then only linear heads are trained to align them (the training
lives in :mod:`labclip_utils.models.miniature_training`):

1. an **image tower** (a small conv net) pretrained *without text* to say which colours and which shapes are in
   a scene, a bag-of-concepts target with no binding labels;
2. a **text tower** (open_clip's text transformer) pretrained *without images* so that reordering a caption's
   object phrases changes nothing while re-binding its attributes does;
3. both frozen and scaled per dimension; linear projection heads trained with the CLIP loss on full captions
   (swap partners kept out of each batch).

Each tower carries binding (probes recover it), yet the aligned space behaves like a bag of words: the paper's
finding in a model that trains in minutes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import TextTransformer
from PIL import Image

from labclip_utils.models.encoder import Encoder
from labclip_utils.models.openclip import text_forward
from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES

PIXEL_MEAN, PIXEL_STD = 0.5, 0.25


@dataclass(frozen=True)
class MiniatureConfig:
    """Everything that determines the trained miniature (and so its cache entry)."""

    seed: int = 0
    colors: tuple[str, ...] = tuple(CLEVR_COLORS)
    shapes: tuple[str, ...] = SHAPES
    image_size: int = 64
    n_train: int = 30_000
    held_out: tuple[float, float] = (0.1, 0.1)  # test, val shares of the combinations (seed 42)
    # image tower: bag-of-concepts pretraining
    image_tower: Literal["conv4", "local"] = "local"
    image_width: int = 32
    tower_dim: int = 128
    image_steps: int = 1200
    image_lr: float = 4e-3
    # text tower: phrase-order contrastive pretraining
    text_width: int = 128
    text_layers: int = 4
    context_length: int = 32
    text_pool: Literal["eot", "mean"] = "mean"
    text_parse_weight: float = 0.0
    text_steps: int = 300
    text_lr: float = 1e-3
    text_tau: float = 0.2
    text_max_objects: int = 6
    # alignment heads
    centre: bool = False  # True subtracts each tower's mean before its head (and closes most of the modality gap)
    logit_scale: float | None = 100.0  # a number: fixed at that value (CLIP's final 100); None: learned from 1/0.07
    embed_dim: int = 128
    head_steps: int = 300
    head_lr: float = 1e-3
    head_weight_decay: float = 0.1
    batch_size: int = 128
    extra: dict = field(default_factory=dict, compare=False)

    def key(self) -> dict:
        """Every field that determines the trained weights (the cache key adds the training code's digest)."""
        data = asdict(self)
        data.pop("extra")
        return data

    @classmethod
    def tiny(cls, seed: int = 0) -> MiniatureConfig:
        """A seconds-long configuration for tests (same code paths, toy sizes)."""
        return cls(seed=seed, n_train=600, image_steps=6, text_steps=6, head_steps=6, batch_size=32,
                   image_width=8, tower_dim=32, text_width=32, text_layers=1, embed_dim=32)


class MiniTokenizer:
    """CLIP's BPE tokenizer (shipped inside open_clip, works offline) remapped to the miniature's few words.

    Ids keep CLIP's order, so padding is 0 and end-of-text is the largest id (open_clip's argmax pooling
    still finds it). Words outside the vocabulary are refused with the list of known words.
    """

    def __init__(self, words: tuple[str, ...], context_length: int = 32) -> None:
        self._clip = open_clip.get_tokenizer("ViT-B-32")
        self.words = tuple(sorted(set(words) | {"a", "an", "and"}))
        raw = self._clip(list(self.words), context_length=context_length)
        ids = torch.unique(torch.cat([raw.flatten(), torch.tensor([0])]))
        self._lut = torch.full((int(ids.max()) + 1,), -1, dtype=torch.long)
        self._lut[ids] = torch.arange(len(ids))
        self.vocab_size = len(ids)
        self.context_length = context_length

    def __call__(self, texts: str | list[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        raw = self._clip(texts, context_length=self.context_length)
        too_long = (raw[:, -1] != 0).nonzero().flatten()
        if len(too_long):
            raise ValueError(f"caption too long for the miniature ({self.context_length} tokens): "
                             f"{texts[int(too_long[0])]!r}")
        unknown = (raw >= len(self._lut)) | (self._lut[raw.clamp(max=len(self._lut) - 1)] < 0)
        if unknown.any():
            bad = texts[int(unknown.any(dim=1).nonzero()[0])]
            raise ValueError(f"the miniature CLIP only knows the words {list(self.words)}; cannot encode {bad!r}")
        return self._lut[raw]

    def word_ids(self) -> dict[str, list[int]]:
        """Each word's ids in the miniature's numbering, without start- and end-of-text: what a tokenizer written
        elsewhere (the website's playground, in JavaScript) needs to encode captions exactly as this one does."""
        return {w: [int(t) for t in self._lut[self._clip([w])[0]] if t > 0][1:-1] for w in self.words}

    def text_ends(self) -> list[int]:
        """The ids of start- and end-of-text in the miniature's numbering."""
        return self._lut[self._clip([""])[0][:2]].tolist()

    def __repr__(self) -> str:
        return f"MiniTokenizer({len(self.words)} words, context {self.context_length})"


class MiniPreprocess:
    """PIL image → normalised C×H×W tensor at the miniature's resolution."""

    def __init__(self, size: int = 64) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.BILINEAR)
        return pixels_to_tensor(np.array(image)[None])[0]

    def __repr__(self) -> str:
        return f"MiniPreprocess(size={self.size}, bilinear, mean={PIXEL_MEAN}, std={PIXEL_STD})"


def pixels_to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×H×W float, normalised as the miniature expects."""
    return (torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255 - PIXEL_MEAN) / PIXEL_STD


class ImageTower(nn.Module):
    """Stride-2 convolutions, then 1×1 convolutions to ``dim`` channels, averaged over the image.

    ``conv4``: four stride-2 convolutions (each output sees most of a 64-pixel image). ``local``: three stride-2
    convolutions (each output sees about one object) and a 1×1 layer, so the pooled embedding is close to a sum of
    per-object features.
    """

    def __init__(self, width: int = 32, dim: int = 128, kind: str = "conv4") -> None:
        super().__init__()
        w = width
        layers: list[nn.Module] = [nn.Conv2d(3, w, 4, 2, 1), nn.GELU(), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GELU(),
                                   nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.GELU()]
        if kind == "conv4":
            layers += [nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.GELU()]
        elif kind == "local":
            layers += [nn.Conv2d(4 * w, 4 * w, 1), nn.GELU()]
        else:
            raise ValueError(f"unknown image tower {kind!r}; use 'conv4' or 'local'")
        self.net = nn.Sequential(*layers)
        self.out = nn.Conv2d(4 * w, dim, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(pixels)).mean(dim=(2, 3))


def build_text_tower(cfg: MiniatureConfig, vocab_size: int) -> TextTransformer:
    return TextTransformer(context_length=cfg.context_length, vocab_size=vocab_size, width=cfg.text_width,
                           heads=max(1, cfg.text_width // 32), layers=cfg.text_layers, output_dim=cfg.tower_dim)


class MiniatureCLIP(nn.Module):
    """Frozen towers → per-dimension scaling (and centring) → linear heads; a CLIP with
    ``encode_image``/``encode_text``."""

    def __init__(self, cfg: MiniatureConfig, vocab_size: int) -> None:
        super().__init__()
        self.text_pool = cfg.text_pool
        self.image_tower = ImageTower(cfg.image_width, cfg.tower_dim, cfg.image_tower)
        self.text_tower = build_text_tower(cfg, vocab_size)
        for name in ("image_mean", "text_mean"):
            self.register_buffer(name, torch.zeros(cfg.tower_dim))
        for name in ("image_std", "text_std"):
            self.register_buffer(name, torch.ones(cfg.tower_dim))
        self.image_proj = nn.Linear(cfg.tower_dim, cfg.embed_dim, bias=False)
        self.text_proj = nn.Linear(cfg.tower_dim, cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(cfg.logit_scale or 1 / 0.07)))

    def text_tower_output(self, tokens: torch.Tensor) -> torch.Tensor:
        """The text tower's raw output (pooled as the configuration says)."""
        return text_forward(self.text_tower, tokens, self.text_pool)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The image tower's scaled output (before the head)."""
        return (self.image_tower(pixels) - self.image_mean) / self.image_std

    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The text tower's scaled output (before the head)."""
        return (self.text_tower_output(tokens) - self.text_mean) / self.text_std

    def encode_image(self, pixels: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.image_proj(self.image_features(pixels))
        return F.normalize(x, dim=-1) if normalize else x

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        x = self.text_proj(self.text_features(tokens))
        return F.normalize(x, dim=-1) if normalize else x


def build_miniature(cfg: MiniatureConfig) -> tuple[MiniatureCLIP, MiniTokenizer]:
    """The untrained miniature, initialised from ``cfg.seed`` (the random-init control uses exactly this)."""
    tokenizer = MiniTokenizer(tuple(cfg.colors) + tuple(cfg.shapes), cfg.context_length)
    torch.manual_seed(cfg.seed)
    return MiniatureCLIP(cfg, tokenizer.vocab_size), tokenizer


def miniature_encoder(model: MiniatureCLIP, tokenizer: MiniTokenizer, cfg: MiniatureConfig, pretrained: str | None,
                      device: str = "cpu"):
    """Wrap a miniature model as an :class:`~labclip_utils.models.Encoder`."""
    encoder = Encoder(model, MiniPreprocess(cfg.image_size), tokenizer, name="miniature", pretrained=pretrained,
                      device=device, code_module="labclip_utils.models.miniature")
    encoder.config = cfg
    return encoder
