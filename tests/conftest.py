"""Shared test helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def book_tool():
    """The book runner (tools/book.py) imported as a module."""
    spec = importlib.util.spec_from_file_location("book_tool", ROOT / "tools" / "book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["book_tool"] = module
    spec.loader.exec_module(module)
    return module


class TinyClip(torch.nn.Module):
    """A few-parameter CLIP-like model for fast tests of the encoder interface and the store."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.image = torch.nn.Sequential(torch.nn.Conv2d(3, dim, 8, 8), torch.nn.AdaptiveAvgPool2d(1),
                                         torch.nn.Flatten())
        self.text = torch.nn.EmbeddingBag(49408, dim)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image(pixels)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens)


@pytest.fixture
def tiny_encoder():
    """A fresh :class:`Encoder` around :class:`TinyClip` (seeded, so its id is stable)."""
    import open_clip
    from torchvision import transforms

    from labclip_utils.models import Encoder

    torch.manual_seed(0)
    return Encoder(TinyClip(), transforms.ToTensor(), open_clip.get_tokenizer("ViT-B-32"), name="tiny")
