"""The miniature CLIP: a CLIP-like model small enough to train on a laptop CPU, built like the paper says
CLIP behaves.

Two "locked towers" learn their own modality alone, then only linear heads are trained to align them:

1. an **image tower** (a small conv net) pretrained *without text* to say which colours and which shapes are in
   a scene, a bag-of-concepts target with no binding labels;
2. a **text tower** (open_clip's text transformer) pretrained *without images* so that reordering a caption's
   object phrases changes nothing while re-binding its attributes does;
3. both frozen and standardised per dimension; linear projection heads and a temperature trained with the CLIP
   loss on full captions (swap partners kept out of each batch).

Each tower carries binding (probes recover it), yet the aligned space behaves like a bag of words: the
paper's finding in a model that trains in minutes. See ``shared/reference/miniature-clip.md`` for what was
measured while designing it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import TextTransformer
from PIL import Image

from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES

#: Bump when training changes what a configuration produces: cached checkpoints are keyed by it.
MINIATURE_VERSION = "1"
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
    image_width: int = 32
    tower_dim: int = 128
    image_steps: int = 1200
    image_lr: float = 4e-3
    # text tower: phrase-order contrastive pretraining
    text_width: int = 128
    text_layers: int = 4
    context_length: int = 32
    text_steps: int = 300
    text_lr: float = 1e-3
    text_tau: float = 0.2
    text_max_objects: int = 6
    # alignment heads
    embed_dim: int = 128
    head_steps: int = 300
    head_lr: float = 1e-3
    head_weight_decay: float = 0.1
    batch_size: int = 128
    extra: dict = field(default_factory=dict, compare=False)

    def key(self) -> dict:
        """The cache key: every field plus the training code's version."""
        data = asdict(self)
        data.pop("extra")
        return {"miniature": MINIATURE_VERSION, **data}

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
        raw = self._clip([f"{w}" for w in self.words], context_length=context_length)
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
    """Four stride-2 convolutions, a 1×1 convolution to ``dim`` channels, global average pooling."""

    def __init__(self, width: int = 32, dim: int = 128) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.GELU(),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.GELU(),
            nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.GELU(),
        )
        self.out = nn.Conv2d(4 * w, dim, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(pixels)).mean(dim=(2, 3))


def text_tower_forward(tower: TextTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower run only up to the batch's last end-of-text token (exact: the mask is causal and the
    output is read at the end-of-text token, so the padding after it never matters)."""
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    x = tower.token_embedding(tokens) + tower.positional_embedding[:length]
    x = tower.ln_final(tower.transformer(x, attn_mask=tower.attn_mask[:length, :length]))
    pooled = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    proj = tower.text_projection
    return proj(pooled) if isinstance(proj, nn.Linear) else pooled @ proj


def build_text_tower(cfg: MiniatureConfig, vocab_size: int) -> TextTransformer:
    return TextTransformer(context_length=cfg.context_length, vocab_size=vocab_size, width=cfg.text_width,
                           heads=max(1, cfg.text_width // 32), layers=cfg.text_layers, output_dim=cfg.tower_dim)


class MiniatureCLIP(nn.Module):
    """Frozen towers → per-dimension standardisation → linear heads; a CLIP with ``encode_image``/``encode_text``."""

    def __init__(self, cfg: MiniatureConfig, vocab_size: int) -> None:
        super().__init__()
        self.image_tower = ImageTower(cfg.image_width, cfg.tower_dim)
        self.text_tower = build_text_tower(cfg, vocab_size)
        for name in ("image_mean", "text_mean"):
            self.register_buffer(name, torch.zeros(cfg.tower_dim))
        for name in ("image_std", "text_std"):
            self.register_buffer(name, torch.ones(cfg.tower_dim))
        self.image_proj = nn.Linear(cfg.tower_dim, cfg.embed_dim, bias=False)
        self.text_proj = nn.Linear(cfg.tower_dim, cfg.embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The image tower's standardised output (before the head)."""
        return (self.image_tower(pixels) - self.image_mean) / self.image_std

    def text_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """The text tower's standardised output (before the head)."""
        return (text_tower_forward(self.text_tower, tokens) - self.text_mean) / self.text_std

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


def _history_to_tensors(history: dict[str, dict[str, list[float]]]) -> dict[str, torch.Tensor]:
    return {f"history.{stage}.{name}": torch.tensor(values, dtype=torch.float64)
            for stage, curves in history.items() for name, values in curves.items()}


def _history_from_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for key, value in tensors.items():
        if key.startswith("history."):
            _, stage, name = key.split(".", 2)
            out.setdefault(stage, {})[name] = value.tolist()
    return out


def load_miniature(
    pretrained: str | None = None, device: str = "cpu", *, config: MiniatureConfig | None = None,
    cache_dir: str | None = None, progress: bool = True,
):
    """The trained miniature as an :class:`~labclip_utils.models.Encoder` (``load_encoder("miniature")``).

    Trained on first use (about 4 minutes on 2 cores) and cached on disk, keyed by its configuration; every
    later call, from any notebook, loads the checkpoint (safetensors, no pickle). ``pretrained="seed1"`` picks
    another seed of the default configuration. The encoder carries ``.config``, ``.history`` (training curves)
    and ``.trained_now``.
    """
    from pathlib import Path

    from labclip_utils.cache import cached_tensors
    from labclip_utils.models.encoder import Encoder
    from labclip_utils.models.miniature_training import train_miniature
    from labclip_utils.profile import current_profile

    if config is None:
        seed = 0
        if pretrained:
            if not pretrained.startswith("seed") or not pretrained[4:].isdigit():
                raise ValueError(f"miniature weights are named 'seed<N>', got {pretrained!r}")
            seed = int(pretrained[4:])
        config = MiniatureConfig(seed=seed)
    root = Path(cache_dir) if cache_dir else current_profile().cache_dir

    def compute() -> dict[str, torch.Tensor]:
        model, history = train_miniature(config, progress=progress)
        return {**{f"model.{k}": v for k, v in model.state_dict().items()}, **_history_to_tensors(history)}

    tensors, hit = cached_tensors(root, "miniature", config.key(), compute)
    model, tokenizer = build_miniature(config)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    encoder = Encoder(model, MiniPreprocess(config.image_size), tokenizer, name="miniature",
                      pretrained=f"seed{config.seed}", device=device)
    encoder.config = config
    encoder.history = _history_from_tensors(tensors)
    encoder.trained_now = not hit
    return encoder


def random_init_miniature(config: MiniatureConfig | None = None, device: str = "cpu"):
    """The miniature's architecture with its initial random weights: the random-init control of every probe."""
    from labclip_utils.models.encoder import Encoder

    config = config or MiniatureConfig()
    model, tokenizer = build_miniature(config)
    return Encoder(model, MiniPreprocess(config.image_size), tokenizer, name="miniature-random-init",
                   pretrained=f"seed{config.seed}", device=device)
